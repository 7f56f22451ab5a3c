/** @type {import('next').NextConfig} */
const nextConfig = {
  // Streamed answers must reach the client token by token: no gzip buffering.
  compress: false,
  poweredByHeader: false,
  // No 308 redirect for a trailing slash: every answer comes from a route (x-request-id).
  skipTrailingSlashRedirect: true,
  // The build needs no network and no linter setup.
  eslint: { ignoreDuringBuilds: true },
  serverExternalPackages: ["pg"],
};

export default nextConfig;

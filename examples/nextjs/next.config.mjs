/** @type {import('next').NextConfig} */
const nextConfig = {
  // Streamed answers must reach the client token by token: no gzip buffering.
  compress: false,
  poweredByHeader: false,
  // The build needs no network and no linter setup.
  eslint: { ignoreDuringBuilds: true },
  serverExternalPackages: ["pg"],
};

export default nextConfig;

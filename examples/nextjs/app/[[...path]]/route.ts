// Any path no other route serves: 404 not_found in the error envelope (C-ERR-2).
import { unknownRoute } from "@/lib/http";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = unknownRoute();

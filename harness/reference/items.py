"""How stored rows look in answers: message items (C-MSG-9) and session objects (C-SES-1)."""

from __future__ import annotations

from typing import Any

from harness.reference.timestamps import format_timestamp


def message_item(row: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the client reads it back.

    The `model` column holds the answering model for assistant messages and the
    client's `originalModel` for user messages, and is named accordingly.
    """
    item: dict[str, Any] = {"id": row["id"], "role": row["role"], "content": row["content"]}
    item["originalModel" if row["role"] == "user" else "model"] = row["model"]
    item.update(
        {
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "total_tokens": row["total_tokens"],
            "user_message_id": row["user_message_id"],
            "contentType": row["content_type"],
            "elapsed_ms": row["elapsed_ms"],
            "completion_id": row["completion_id"],
            "timestamp": format_timestamp(row["message_timestamp"]),
            "error": row["error_message"] is not None,
            "error_message": row["error_message"],
        }
    )
    return item


def session_item(row: dict[str, Any]) -> dict[str, Any]:
    last = row["last_message_timestamp"]
    return {
        "id": row["id"],
        "title": row["title"],
        "created_at": format_timestamp(row["created_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
        "message_count": row["message_count"],
        "total_tokens": int(row["total_tokens"]),
        "last_model": row["last_model"],
        "last_message_preview": row["last_message_preview"],
        "last_message_timestamp": format_timestamp(last) if last is not None else None,
    }

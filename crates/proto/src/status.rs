//! The reply envelope shared by every `/auth` endpoint.

use serde::Serialize;

crate::json::proto_enum! {
    /// Result codes of the API, emitted by name.
    StatusCode {
        UnknownStatus = 0 => "UNKNOWN_STATUS",
        Success = 1 => "SUCCESS",
        PermissionDenied = 2 => "PERMISSION_DENIED",
        NotFound = 3 => "NOT_FOUND",
        Conflict = 4 => "CONFLICT",
        InvalidTokenOrSignature = 5 => "INVALID_TOKEN_OR_SIGNATURE",
        InvalidApiKey = 6 => "INVALID_API_KEY",
        InternalServerError = 7 => "INTERNAL_SERVER_ERROR",
        InvalidParameters = 8 => "INVALID_PARAMETERS",
        MissingRequiredParameter = 9 => "MISSING_REQUIRED_PARAMETER",
        RoomNotFound = 10 => "ROOM_NOT_FOUND",
        UserNotFound = 11 => "USER_NOT_FOUND",
        UserBlocked = 12 => "USER_BLOCKED",
        UserNotActive = 13 => "USER_NOT_ACTIVE",
        RoomNotActive = 14 => "ROOM_NOT_ACTIVE",
    }
}

/// `CommonResponse {status, msg, status_code}`: the first three fields of every reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommonResponse {
    /// Whether the call did what was asked.
    pub status: bool,
    /// Human-readable outcome.
    pub msg: String,
    /// Machine-readable outcome.
    pub status_code: StatusCode,
}

impl CommonResponse {
    /// A successful envelope with the message `success`.
    pub fn success() -> Self {
        Self::ok("success")
    }

    /// A successful envelope with the given message.
    pub fn ok(msg: impl Into<String>) -> Self {
        Self {
            status: true,
            msg: msg.into(),
            status_code: StatusCode::Success,
        }
    }

    /// A failed envelope.
    pub fn fail(status_code: StatusCode, msg: impl Into<String>) -> Self {
        Self {
            status: false,
            msg: msg.into(),
            status_code,
        }
    }
}

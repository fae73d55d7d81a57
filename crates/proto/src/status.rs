//! The reply envelope shared by every `/auth` endpoint.

use serde::Serialize;

crate::json::proto_enum! {
    /// Result codes of the API, emitted by name.
    StatusCode {
        /// Not set: Plug-N-Meet leaves a few successful replies without a code.
        UnknownStatus = 0 => "UNKNOWN_STATUS",
        /// Done as asked.
        Success = 1 => "SUCCESS",
        /// The caller may not do this.
        PermissionDenied = 2 => "PERMISSION_DENIED",
        /// Nothing matched.
        NotFound = 3 => "NOT_FOUND",
        /// Already exists, or already in progress.
        Conflict = 4 => "CONFLICT",
        /// The signature or token did not verify.
        InvalidTokenOrSignature = 5 => "INVALID_TOKEN_OR_SIGNATURE",
        /// The API key is not the server's.
        InvalidApiKey = 6 => "INVALID_API_KEY",
        /// The server failed (or, as in Plug-N-Meet, a reserved room id).
        InternalServerError = 7 => "INTERNAL_SERVER_ERROR",
        /// The request broke a validation rule (the message lists which).
        InvalidParameters = 8 => "INVALID_PARAMETERS",
        /// A required field was empty.
        MissingRequiredParameter = 9 => "MISSING_REQUIRED_PARAMETER",
        /// No such room.
        RoomNotFound = 10 => "ROOM_NOT_FOUND",
        /// No such user in the room.
        UserNotFound = 11 => "USER_NOT_FOUND",
        /// The user is on the room's block list.
        UserBlocked = 12 => "USER_BLOCKED",
        /// The user is not in the room now.
        UserNotActive = 13 => "USER_NOT_ACTIVE",
        /// The room exists but is not running.
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

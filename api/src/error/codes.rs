//! The table of error codes: each has an HTTP status, a stable
//! snake_case `code` that clients match on (never on the prose), and a one
//! line description. It is the only place codes are defined; the README's
//! "Error codes" section lists the same table (a test checks it).

use axum::http::StatusCode;

macro_rules! codes {
    ($($variant:ident = ($code:literal, $status:ident, $description:literal),)+) => {
        /// Every error code the API answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($variant,)+
        }

        impl Code {
            pub const ALL: &[Code] = &[$(Code::$variant),+];

            /// The `code` field of the error body.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)+
                }
            }

            /// The HTTP status answered with this code.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)+
                }
            }

            /// What the code means.
            pub fn description(self) -> &'static str {
                match self {
                    $(Code::$variant => $description,)+
                }
            }
        }
    };
}

codes! {
    RouteNotFound = ("route_not_found", NOT_FOUND, "no endpoint has this path"),
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED, "the endpoint does not take this method"),
    BodyUnreadable = ("body_unreadable", BAD_REQUEST, "the request body could not be read"),
    JsonInvalid = ("json_invalid", BAD_REQUEST, "the body is not JSON of the expected shape"),
    BodyTooLarge = ("body_too_large", PAYLOAD_TOO_LARGE, "the body is larger than --max-body-bytes"),
    Unauthorized = ("unauthorized", UNAUTHORIZED, "a valid bearer token is required"),
    ReadOnly = ("read_only", FORBIDDEN, "a read-only token may only read (GET/HEAD)"),
    Timeout = ("timeout", SERVICE_UNAVAILABLE, "the request took longer than --request-timeout"),
    GateNotFound = ("gate_not_found", NOT_FOUND, "no such service (gate)"),
    EnvironmentNotFound = ("environment_not_found", NOT_FOUND, "the service has no such environment"),
    GateExists = ("gate_exists", BAD_REQUEST, "a service with this name exists"),
    TicketNotFound = ("ticket_not_found", NOT_FOUND, "no such ticket"),
    TicketMismatch = ("ticket_mismatch", CONFLICT, "the ticket does not hold these gates"),
    Contended = ("contended", CONFLICT, "the operation kept racing with others; retry"),
    RedisUnavailable = ("redis_unavailable", SERVICE_UNAVAILABLE, "Redis cannot be reached; retry"),
    DeliveryNotFound = ("delivery_not_found", NOT_FOUND, "no such delivery"),
    UrlInvalid = ("url_invalid", BAD_REQUEST, "the URL is not an allowed http(s) URL"),
    MethodInvalid = ("method_invalid", BAD_REQUEST, "the HTTP method is not allowed"),
    HeadersInvalid = ("headers_invalid", BAD_REQUEST, "a header name or value is not allowed"),
    PolicyUnknown = ("policy_unknown", BAD_REQUEST, "no retry policy has this name"),
    IdempotencyKeyInvalid = ("idempotency_key_invalid", BAD_REQUEST, "the idempotency key is malformed"),
    QueryInvalid = ("query_invalid", BAD_REQUEST, "a query parameter is malformed"),
    DeliveryStateConflict = ("delivery_state_conflict", CONFLICT, "the delivery is not in a state that allows this"),
    NameInvalid = ("name_invalid", BAD_REQUEST, "a name is malformed or too long"),
    StateInvalid = ("state_invalid", BAD_REQUEST, "a state value is not allowed"),
    LimitInvalid = ("limit_invalid", BAD_REQUEST, "limit is out of range"),
    NetNotFound = ("net_not_found", NOT_FOUND, "no such net"),
    PlaceNotFound = ("place_not_found", NOT_FOUND, "the net has no such place"),
    ColorUnknown = ("color_unknown", BAD_REQUEST, "the net has no token of this colour"),
    ColorGroupMismatch = ("color_group_mismatch", BAD_REQUEST, "the colour belongs to another colour group"),
    NetKeyInvalid = ("net_key_invalid", BAD_REQUEST, "the net key is malformed"),
    NetInvalid = ("net_invalid", BAD_REQUEST, "the net definition is invalid (see where)"),
    NetExists = ("net_exists", CONFLICT, "a net with this key exists with another definition"),
    NetFailed = ("net_failed", CONFLICT, "the net has failed"),
    StatemachineNotFound = ("statemachine_not_found", NOT_FOUND, "no such state machine"),
    IdInvalid = ("id_invalid", BAD_REQUEST, "an id is malformed"),
    StatemachineInvalid = ("statemachine_invalid", BAD_REQUEST, "the state-machine definition is invalid (see where)"),
    EntityInvalid = ("entity_invalid", BAD_REQUEST, "the entity id is malformed"),
    AtInvalid = ("at_invalid", BAD_REQUEST, "the time is not ISO 8601"),
    EventIdInvalid = ("event_id_invalid", BAD_REQUEST, "the event id is malformed"),
    DataInvalid = ("data_invalid", BAD_REQUEST, "the data is not a JSON object"),
    BatchInvalid = ("batch_invalid", BAD_REQUEST, "the batch is empty or too large"),
    EntityNotFound = ("entity_not_found", NOT_FOUND, "the machine has no such entity"),
    StateUnknown = ("state_unknown", BAD_REQUEST, "the machine has no such state"),
    TransitionNotAllowed = ("transition_not_allowed", CONFLICT, "the move is not allowed from the entity's state (see allowed)"),
    StatemachineExists = ("statemachine_exists", CONFLICT, "a state machine with this id exists"),
    InvalidJsonContent = ("invalid_json_content", BAD_REQUEST, "gatekeeper's 'Your json contains invalid information'"),
    Internal = ("internal", INTERNAL_SERVER_ERROR, "a bug: the cause is logged"),
    NotReady = ("not_ready", SERVICE_UNAVAILABLE, "Redis unreachable or scripts not loaded"),
    BadRequest = ("bad_request", BAD_REQUEST, "a request the framework refused (see reason)"),
    PathInvalid = ("path_invalid", BAD_REQUEST, "a path segment is not valid UTF-8 once percent-decoded (see where)"),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_errors_are_4xx_or_5xx() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                c.as_str()
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
    }

    #[test]
    fn the_readme_lists_every_code() {
        let readme = include_str!("../../../README.md");
        for c in Code::ALL {
            let row = format!("| `{}` | {} |", c.as_str(), c.status().as_u16());
            assert!(readme.contains(&row), "README.md lacks the row {row:?}");
        }
    }
}

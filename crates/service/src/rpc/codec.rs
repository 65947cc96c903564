//! What a caller hears when tonic cannot decode its request. Tonic answers a request body that
//! is not the method's message with INTERNAL and the decoder's words, and one over the
//! server's `max_decoding_message_size` with OUT_OF_RANGE: codes that tell a client the server
//! is broken, or that it asked past the end of something. Both are the caller's to fix:
//! [`refusal`] turns them into INVALID_ARGUMENT naming the message and RESOURCE_EXHAUSTED naming
//! the limit. Every other status passes unchanged.

use tonic::{Code, Status};

/// Tonic's message for a body the message decoder refused (prost's `DecodeError`).
const NOT_THE_MESSAGE: &str = "failed to decode Protobuf message: ";
/// Tonic's message for a message over the size limit, up to the numbers.
const TOO_LARGE: &str = "Error, decoded message length too large: found ";
/// Tonic's message for a frame whose first byte is neither 0 nor 1, up to the byte.
const BAD_FLAG: &str = "protocol error: received message with invalid compression flag: ";
/// Tonic's message for a body that ends inside a message.
const TRUNCATED: &str = "Unexpected EOF decoding stream.";

/// Returns the status a caller should get instead of `status` when `status` is tonic's own
/// answer to a request body it could not decode; `input` names the method's request message
/// (`tandem.v1.SubmitMenteeRequest`). Returns `None` for every other status.
pub fn refusal(status: &Status, input: &str) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::Internal => {
            if let Some(why) = message.strip_prefix(NOT_THE_MESSAGE) {
                Some(Status::invalid_argument(format!(
                    "request body is not a valid {input}: {why}"
                )))
            } else if let Some(rest) = message.strip_prefix(BAD_FLAG) {
                let flag = rest.split_whitespace().next().unwrap_or("?");
                Some(Status::invalid_argument(format!(
                    "request body is not a gRPC message: its compression flag is {flag}, \
                     not 0 or 1"
                )))
            } else if message == TRUNCATED {
                Some(Status::invalid_argument(format!(
                    "request body ends inside a {input}: the message is truncated"
                )))
            } else {
                None
            }
        }
        Code::OutOfRange => {
            let (found, limit) = too_large(message)?;
            Some(Status::resource_exhausted(format!(
                "request of {found} bytes exceeds the limit of {limit} bytes"
            )))
        }
        _ => None,
    }
}

/// Reads `found N bytes, the limit is: L bytes` of tonic's size message.
fn too_large(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix(TOO_LARGE)?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = "tandem.v1.SubmitMenteeRequest";

    #[test]
    fn an_undecodable_body_is_invalid_argument_naming_the_message() {
        let tonic =
            Status::internal("failed to decode Protobuf message: invalid wire type value: 7");
        let ours = refusal(&tonic, INPUT).expect("rewritten");
        assert_eq!(ours.code(), Code::InvalidArgument);
        assert_eq!(
            ours.message(),
            "request body is not a valid tandem.v1.SubmitMenteeRequest: invalid wire type value: 7"
        );
    }

    #[test]
    fn an_oversized_body_is_resource_exhausted_naming_the_limit() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 100007 bytes, the limit is: 65536 bytes",
        );
        let ours = refusal(&tonic, INPUT).expect("rewritten");
        assert_eq!(ours.code(), Code::ResourceExhausted);
        assert_eq!(
            ours.message(),
            "request of 100007 bytes exceeds the limit of 65536 bytes"
        );
    }

    #[test]
    fn a_body_that_is_no_grpc_frame_is_invalid_argument() {
        let tonic = Status::internal(
            "protocol error: received message with invalid compression flag: 71 (valid flags are 0 and 1), while sending request",
        );
        let ours = refusal(&tonic, INPUT).expect("rewritten");
        assert_eq!(ours.code(), Code::InvalidArgument);
        assert!(
            ours.message().contains("compression flag is 71"),
            "{}",
            ours.message()
        );
        let truncated = refusal(&Status::internal(TRUNCATED), INPUT).expect("rewritten");
        assert_eq!(truncated.code(), Code::InvalidArgument);
    }

    #[test]
    fn other_statuses_pass_unchanged() {
        for status in [
            Status::internal("internal error"),
            Status::out_of_range("page 7 is past the end"),
            Status::invalid_argument("mentee.goals: at least one goal is required"),
            Status::not_found("mentee not found"),
        ] {
            assert!(refusal(&status, INPUT).is_none(), "{status:?}");
        }
    }
}

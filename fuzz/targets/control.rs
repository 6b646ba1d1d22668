//! Fuzz target `control`: request lines on the node's control socket, the
//! local API that bots and the CLI speak ([`Request::parse_line`]).
//!
//! Checks, on any line: parsing never panics, and a request it accepts
//! prints as JSON that parses back to the same request (what the CLI and
//! the desktop app send is what the node reads).

use tincan_node::Request;

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    // The socket reads lines into a `String`: bytes that are not UTF-8
    // end the connection before any parsing.
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = Request::parse_line(line) {
        let printed = serde_json::to_string(&request).expect("a request prints as JSON");
        let again = Request::parse_line(&printed).expect("a printed request parses");
        assert_eq!(again, request, "request changed in a round trip: {printed}");
    }
}

//! Search and export end to end: real daemons on 127.0.0.1 (`--no-mdns`,
//! static peers). Full-text search finds words of messages stored before a
//! SIGKILL and restart, ranked and highlighted, shaped like `history
//! --json`; `export` writes JSON that parses back into exactly the history,
//! and HTML in which everything typed is escaped. (The schema upgrade of an
//! old database is tested in `node/src/store/migrations.rs`.)

mod common;

use common::loopback::started;
use serde_json::Value;
use tincan_node::ExportView;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn search_finds_words_stored_before_a_restart() {
    let mut users = started(&["Ann", "Bob"]);
    for text in [
        "the quarterly figures are ready",
        "lunch at noon?",
        "quarterly review moved to Friday; quarterly numbers attached",
    ] {
        users[0].send_delivered("bob", text);
    }
    users[1].send_delivered("ann", "thanks, see you at lunch");
    users[1].wait_history("ann", "four messages", |h| h.len() == 4);

    users[1].kill();
    users[1].start();
    let hits = users[1].json(&["search", "QUARTER", "--json"]);
    let hits = hits.as_array().expect("search --json is an array");
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(
        hits[0]["text"], "quarterly review moved to Friday; quarterly numbers attached",
        "more matches rank first: {hits:?}"
    );
    assert_eq!(
        hits[1]["highlight"], "the **quarterly** figures are ready",
        "{hits:?}"
    );
    // Shaped like history --json, plus `highlight`.
    let history = users[1].history("ann");
    for hit in hits {
        let mut message = hit.clone();
        message.as_object_mut().expect("object").remove("highlight");
        assert!(history.contains(&message), "{hit} is not a history row");
    }
    // Every word must match; both directions; one conversation only.
    let lunch = users[1].json(&["search", "lunch", "--json"]);
    assert_eq!(lunch.as_array().map(Vec::len), Some(2), "{lunch}");
    let both = users[1].json(&["search", "lunch", "noon", "--json"]);
    assert_eq!(both.as_array().map(Vec::len), Some(1), "{both}");
    let limited = users[1].json(&["search", "lunch", "--limit", "1", "--json"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(1), "{limited}");
    let elsewhere = users[1].json(&["search", "lunch", "--peer", "ann", "--json"]);
    assert_eq!(elsewhere.as_array().map(Vec::len), Some(2), "{elsewhere}");
    // Query syntax typed by a user is just text; no words is a clear error.
    let odd = users[1].json(&["search", "\"noon", "OR", "NEAR(", "--json"]);
    assert_eq!(odd, Value::Array(vec![]));
    let out = users[1].run(&["search", "((", "--json"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nothing to search for"),
        "{}",
        stderr(&out)
    );
    // The human form marks the match too.
    let out = users[1].run(&["search", "noon"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("**noon**"));
}

#[test]
fn export_json_round_trips_and_html_is_escaped() {
    let users = started(&["Ann", "Bob", "Cat"]);
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    ann.send_delivered("bob", "<script>alert('hi')</script> & \"quotes\"");
    bob.send_delivered("ann", "plain reply");
    cat.send_delivered("ann", "from cat");
    ann.wait_history("cat", "cat's message", |h| h.len() == 1);
    ann.json(&["read", "bob", "--json"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let json_file = dir.path().join("all.json");
    let summary = ann.json(&[
        "export",
        "--out",
        json_file.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(summary["conversations"], 2, "{summary}");
    assert_eq!(summary["messages"], 3, "{summary}");
    let text = std::fs::read_to_string(&json_file).expect("export file");
    let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(parsed["format"], "tincan-export");
    assert_eq!(parsed["user_id"], ann.user_id());
    // Every conversation is exactly its history.
    let conversations = parsed["conversations"].as_array().expect("conversations");
    for (conversation, peer) in conversations.iter().zip(["bob", "cat"]) {
        let history = Value::Array(ann.history(peer));
        assert_eq!(
            conversation["messages"], history,
            "conversation with {peer}"
        );
    }
    // It reads back into the typed export and writes out the same.
    let typed: ExportView = serde_json::from_str(&text).expect("reads back");
    assert_eq!(serde_json::to_value(&typed).expect("to value"), parsed);
    assert_eq!(typed.conversations[0].name, "Bob");

    // One conversation, as HTML: what people typed cannot become markup.
    let html_file = dir.path().join("bob.html");
    ann.json(&[
        "export",
        "--format",
        "html",
        "--peer",
        "bob",
        "--out",
        html_file.to_str().expect("utf-8"),
        "--json",
    ]);
    let html = std::fs::read_to_string(&html_file).expect("html file");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;")
    );
    assert!(html.contains("plain reply"));
    assert!(!html.contains("from cat"), "only the conversation with Bob");

    let out = ann.run(&["export", "--peer", "nobody", "--out", "/nonexistent/x"]);
    assert!(!out.status.success());

    // An existing file is replaced only when asked; errors name the file
    // asked for, never the temporary one beside it.
    let path = json_file.to_str().expect("utf-8");
    let out = ann.run(&["export", "--out", path]);
    assert!(!out.status.success(), "export overwrote {path} silently");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists; pass --force"), "{err}");
    assert_eq!(std::fs::read_to_string(&json_file).expect("kept"), text);
    ann.json(&["export", "--out", path, "--force", "--json"]);
    let out = ann.run(&["export", "--out", "/nonexistent/all.json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write /nonexistent/all.json"), "{err}");
    assert!(!err.contains(".tmp"), "{err}");
}

//! The `gatehouse` binary as an operator runs it: one-line configuration errors, JSON
//! logs, the bootstrap token, SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gatehouse() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for var in gatehouse_server::config::VARIABLES {
        command.env_remove(var);
    }
    command.env_remove("GATEHOUSE_CONFIG");
    command
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_the_variable() {
    let output = gatehouse().args(["check-config"]).env("GATEHOUSE_LISTEN", "not-an-address").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("gatehouse: GATEHOUSE_LISTEN:"), "{stderr}");

    let serve = gatehouse().env("GATEHOUSE_DATABASE_URL", "postgres://127.0.0.1/x").output().unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8(serve.stderr).unwrap().contains("GATEHOUSE_MASTER_KEY"));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["openapi", "--help"],
        &["check-config", "--help"],
    ] {
        let output = gatehouse().args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8(output.stdout).unwrap().contains("Usage"), "{args:?}");
    }
}

#[test]
fn serve_logs_json_prints_the_bootstrap_token_once_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("gatehouse-bin-{}", gatehouse_core::ids::EventId::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = gatehouse()
        .current_dir(&dir)
        .env("GATEHOUSE_LISTEN", "127.0.0.1:0")
        .env("GATEHOUSE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    let mut addr = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("gh_admin_")) {
            token = Some(t.to_owned());
        }
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
            && json["message"] == "gatehouse ready"
        {
            addr = json["listen"].as_str().map(str::to_owned);
        }
    }
    let (token, addr) = (token.expect("bootstrap token printed"), addr.expect("ready line logged as JSON"));

    // One authenticated call; its log line must not contain the credential.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{addr}/v1/tenants"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut rest = Vec::new();
    for line in lines.map_while(Result::ok) {
        rest.push(line);
    }
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}");
    let request_line = rest.iter().find(|l| l.contains("/v1/tenants")).expect("the request was logged");
    let parsed: serde_json::Value = serde_json::from_str(request_line).unwrap();
    assert_eq!(parsed["http.status"], 200);
    assert!(parsed["span"]["request.id"].as_str().is_some_and(|id| id.starts_with("req_")), "{request_line}");
    assert!(rest.iter().all(|l| !l.contains(&token)), "a log line contains the token");
    assert!(rest.iter().any(|l| l.contains("shutting down")));
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Verified domains of organizations, black-box on SQLite and Postgres: the server asks a
//! DNS server on loopback (real DNS over UDP, answered here with hickory-proto) for the
//! TXT record, and users with a verified email at the domain are auto-joined or offered
//! the organization.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::{Backend, TestServer};

on_both_backends!(domains_are_proven_by_txt_records_and_let_users_join,);

const PASSWORD: &str = "violet kettle drums";

/// An authoritative DNS server on loopback with TXT records set by the test.
#[derive(Clone, Default)]
struct Dns {
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl Dns {
    async fn start(&self) -> std::net::SocketAddr {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let records = self.records.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else { return };
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.metadata.message_type = MessageType::Response;
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.authoritative = true;
                let mut found = false;
                for q in &query.queries {
                    reply.add_query(q.clone());
                    let name = q.name().to_ascii().trim_end_matches('.').to_lowercase();
                    let answers = records.lock().unwrap().get(&name).cloned();
                    if let (RecordType::TXT, Some(values)) = (q.query_type, answers) {
                        found = true;
                        for v in values {
                            reply.add_answer(Record::from_rdata(q.name().clone(), 5, RData::TXT(TXT::new(vec![v]))));
                        }
                    }
                }
                if !found {
                    reply.metadata.response_code = ResponseCode::NXDomain;
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        });
        addr
    }

    fn publish(&self, name: &str, value: &str) {
        self.records.lock().unwrap().entry(name.to_owned()).or_default().push(value.to_owned());
    }
}

async fn domains_are_proven_by_txt_records_and_let_users_join(backend: Backend) {
    let dns = Dns::default();
    let addr = dns.start().await.to_string();
    let s = TestServer::start_with(backend, &[("GATEHOUSE_DNS_RESOLVER", addr.as_str())]).await;
    let t = s.auth_tenant("dom", Value::Null).await;
    let orgs = format!("/v1/tenants/{}/organizations", t.id);
    let r = s.post(&orgs, &s.admin, json!({"slug": "acme", "name": "Acme", "domain_join": "auto_join"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let acme = r.body["id"].as_str().unwrap().to_owned();
    let r = s
        .post(
            &orgs,
            &s.admin,
            json!({"slug": "beta", "name": "Beta", "domain_join": "offer", "domain_join_role": "viewer"}),
        )
        .await;
    let beta = r.body["id"].as_str().unwrap().to_owned();

    // Claim: the record to publish.
    let r = s.post(&format!("{orgs}/{acme}/domains"), &s.admin, json!({"domain": "Acme.Example."})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["domain"], "acme.example");
    assert_eq!(r.body["verification"]["name"], "_gatehouse-challenge.acme.example");
    let value = r.body["verification"]["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("gatehouse-domain-verification="));
    s.post(&format!("{orgs}/{acme}/domains"), &s.admin, json!({"domain": "acme.example"}))
        .await
        .assert_problem(409, "conflict");
    s.post(&format!("{orgs}/{acme}/domains"), &s.admin, json!({"domain": "localhost"}))
        .await
        .assert_problem(422, "validation_failed");

    // Not yet published, or a wrong value: refused.
    let verify = format!("{orgs}/{acme}/domains/acme.example/verify");
    s.post(&verify, &s.admin, json!({})).await.assert_problem(400, "domain_not_verified");
    dns.publish("_gatehouse-challenge.acme.example", "gatehouse-domain-verification=someone-else");
    s.post(&verify, &s.admin, json!({})).await.assert_problem(400, "domain_not_verified");
    dns.publish("_gatehouse-challenge.acme.example", &value);
    let r = s.post(&verify, &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["verified_at"].is_string());

    // Another organization cannot verify the same domain.
    let r = s.post(&format!("{orgs}/{beta}/domains"), &s.admin, json!({"domain": "acme.example"})).await;
    let beta_value = r.body["verification"]["value"].as_str().unwrap().to_owned();
    dns.publish("_gatehouse-challenge.acme.example", &beta_value);
    s.post(&format!("{orgs}/{beta}/domains/acme.example/verify"), &s.admin, json!({}))
        .await
        .assert_problem(409, "conflict");
    let r = s.post(&format!("{orgs}/{beta}/domains"), &s.admin, json!({"domain": "beta.example"})).await;
    dns.publish("_gatehouse-challenge.beta.example", r.body["verification"]["value"].as_str().unwrap());
    assert_eq!(s.post(&format!("{orgs}/{beta}/domains/beta.example/verify"), &s.admin, json!({})).await.status, 200);

    // A user at acme.example joins when the email is verified.
    let r = s.auth(&t, "signup", json!({"email": "kim@acme.example", "password": PASSWORD})).await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let mine = s.get(&format!("/t/{}/auth/organizations", t.slug), &access).await;
    assert_eq!(mine.body["data"], json!([]), "nothing before the email is verified");
    let outbox = s.get(&format!("/v1/tenants/{}/dev/outbox?limit=100", t.id), &s.admin).await;
    let text = outbox.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["recipient"] == "kim@acme.example")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = text.find("token=").unwrap() + 6;
    let token: String =
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    assert_eq!(s.auth(&t, "email/verify", json!({"token": token})).await.status, 204);
    let mine = s.get(&format!("/t/{}/auth/organizations", t.slug), &access).await;
    assert_eq!(mine.body["data"][0]["organization"]["slug"], "acme", "{:?}", mine.body);
    assert_eq!(mine.body["data"][0]["role"], "member");

    // A verified user at beta.example is offered Beta and joins on request as viewer.
    let users = format!("/v1/tenants/{}/users", t.id);
    let r = s
        .post(&users, &s.admin, json!({"email": "lee@beta.example", "password": PASSWORD, "email_verified": true}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let login = s.auth(&t, "login", json!({"email": "lee@beta.example", "password": PASSWORD})).await;
    let lee = login.body["access_token"].as_str().unwrap().to_owned();
    let offered = s.get(&format!("/t/{}/auth/organizations/discoverable", t.slug), &lee).await;
    let slugs: Vec<&str> =
        offered.body["data"].as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["beta"]);
    s.post(&format!("/t/{}/auth/organizations/{acme}/join", t.slug), &lee, json!({}))
        .await
        .assert_problem(404, "not_found");
    let r = s.post(&format!("/t/{}/auth/organizations/{beta}/join", t.slug), &lee, json!({})).await;
    assert_eq!((r.status, r.body["role"].clone()), (201, json!("viewer")), "{:?}", r.body);
    let offered = s.get(&format!("/t/{}/auth/organizations/discoverable", t.slug), &lee).await;
    assert_eq!(offered.body["data"], json!([]));
    // Turning the policy off stops offers; removing the domain too.
    assert_eq!(s.patch(&format!("{orgs}/{acme}"), &s.admin, json!({"domain_join": "off"})).await.status, 200);
    let r = s.auth(&t, "signup", json!({"email": "max@acme.example", "password": PASSWORD})).await;
    let max = r.body["access_token"].as_str().unwrap().to_owned();
    let offered = s.get(&format!("/t/{}/auth/organizations/discoverable", t.slug), &max).await;
    assert_eq!(offered.body["data"], json!([]));
    assert_eq!(s.delete(&format!("{orgs}/{beta}/domains/beta.example"), &s.admin).await.status, 204);
    let listed = s.get(&format!("{orgs}/{beta}/domains"), &s.admin).await;
    let domains: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().map(|d| d["domain"].as_str().unwrap()).collect();
    assert_eq!(domains, ["acme.example"]);
}

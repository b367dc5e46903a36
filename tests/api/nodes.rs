//! Conversations followed from several sockets (a customer's tabs and devices):
//! on one node, and across two nodes sharing PostgreSQL and Redis
//! (`TENDERO_REDIS_URL`), with the official socket.io-client. The follower sees
//! the question and its answer streaming, a socket that does not follow the
//! conversation cannot stop it, and the follower's `cancel` stops the answer on
//! the node that writes it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::agent::with_fake;
use crate::fake_ollama::{FakeOllama, Reply, Step};
use crate::helpers::{Backend, TestApp, postgres_url, spawn_app_with, test_settings};
use crate::skip::skip;
use crate::socket_client::SocketClient;

/// The Redis server under test, if configured.
fn redis_url() -> Option<String> {
    std::env::var("TENDERO_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Channels of their own for each test's nodes, so that tests sharing one Redis
/// never hear each other.
fn fresh_prefix() -> String {
    format!("tendero-test-{}", uuid::Uuid::new_v4().simple())
}

/// `follower` follows `chat_id` (as the chat page does after a reload); `asking`
/// asks in it twice. The follower sees both questions and the first answer whole,
/// a stranger's `cancel` changes nothing, and the follower's `cancel` stops the
/// second answer for both and upstream.
async fn a_conversation_followed_from_another_socket(
    asking_node: &TestApp,
    following_node: &TestApp,
    fake: &FakeOllama,
) {
    let requests = fake.requests().len();
    let abandoned = fake.abandoned();
    let chat_id = uuid::Uuid::new_v4().to_string();
    let mut follower = SocketClient::connect(&following_node.url(""), None).await;
    let mut stranger = SocketClient::connect(&following_node.url(""), None).await;
    let mut asking = SocketClient::connect(&asking_node.url(""), None).await;
    follower.emit("history", json!({"chat_id": chat_id})).await;
    let (event, history) = follower.next_event().await;
    assert_eq!(event, "history", "{history}");
    assert_eq!(history["messages"], json!([]));

    let gate = Arc::new(Notify::new());
    fake.then(Reply::steps(vec![
        Step::Text("La Licuadora Oster 600W [1] ".to_owned()),
        Step::Gate(gate.clone()),
        Step::Text("cuesta $249.900.".to_owned()),
    ]));
    asking.ask("quiero una licuadora", Some(&chat_id)).await;
    let (event, question) = follower.next_event().await;
    assert_eq!(event, "question", "{question}");
    assert_eq!(
        question,
        json!({"chat_id": chat_id, "query": "quiero una licuadora"})
    );
    let (event, first) = follower.next_event().await;
    assert_eq!(event, "response", "{first}");
    assert_eq!(first["chunk"], "La Licuadora Oster 600W [1] ");

    // A socket that never followed the conversation cannot stop it: its cancel is
    // acknowledged as applied to its own answers only, while the answer is held,
    // and the answer goes on after that.
    let ack = stranger
        .emit_with_ack("cancel", json!({"chat_id": chat_id}))
        .await;
    assert_eq!(ack, json!({"chat_id": chat_id, "scope": "socket"}));
    let other_chat = uuid::Uuid::new_v4().to_string();
    gate.notify_one();

    let (asked, followed) = tokio::join!(asking.until_end(), follower.until_end());
    assert_eq!(asked.last_event, "response", "{}", asked.last);
    assert_eq!(followed.last_event, "response", "{}", followed.last);
    assert_eq!(
        asked.last["response"],
        "La Licuadora Oster 600W [1] cuesta $249.900."
    );
    assert_eq!(followed.last, asked.last);
    assert_eq!(followed.chunks, asked.chunks[1..]);
    assert_eq!(followed.last["sources"][0]["sku"], "LIC-600");

    // The follower stops the next answer, wherever it is being written.
    fake.then(Reply::steps(vec![
        Step::Text("Claro, ".to_owned()),
        Step::Stall,
    ]));
    asking.ask("¿y en negro?", Some(&chat_id)).await;
    let (event, question) = follower.next_event().await;
    assert_eq!(event, "question", "{question}");
    assert_eq!(question["query"], "¿y en negro?");
    let (event, _) = follower.next_event().await;
    assert_eq!(event, "response");
    follower.emit("cancel", json!({"chat_id": chat_id})).await;
    let (asked, followed) = tokio::join!(asking.until_end(), follower.until_end());
    assert_eq!(asked.last_event, "error", "{}", asked.last);
    assert_eq!(asked.last["code"], "cancelled");
    assert_eq!(followed.last_event, "error", "{}", followed.last);
    assert_eq!(followed.last["code"], "cancelled");
    fake.wait_abandoned(abandoned + 1).await;

    // Both nodes read the same conversation.
    let conversation = following_node
        .get(
            &format!("/api/conversaciones/{chat_id}"),
            &following_node.admin,
        )
        .await
        .expect(200);
    let states: Vec<_> = conversation["mensajes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["estado"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states.len(), 4, "{conversation}");
    assert_eq!(states[1], "completo");
    assert_eq!(states[3], "cancelado");
    assert_eq!(fake.requests().len(), requests + 2);

    // The stranger heard nothing of the conversation: the next thing it sees is
    // the answer to its own request.
    stranger
        .emit("history", json!({"chat_id": other_chat}))
        .await;
    let (event, _) = stranger.next_event().await;
    assert_eq!(event, "history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_tabs_on_one_node_follow_the_same_conversation() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    a_conversation_followed_from_another_socket(&app, &app, &fake).await;
}

/// The Redis URL under test, when PostgreSQL is configured too (two nodes share a
/// PostgreSQL database); otherwise the test is noted as skipped.
fn redis_for_two_nodes() -> Option<String> {
    if postgres_url().is_none() {
        skip("postgres", "PostgreSQL", "TENDERO_TEST_DATABASE_URL");
        return None;
    }
    let redis = redis_url();
    if redis.is_none() {
        skip("redis", "Redis", "TENDERO_TEST_REDIS_URL");
    }
    redis
}

/// Two nodes sharing a fresh PostgreSQL database, the fake Ollama and `redis`
/// (channels under `prefix`). The second must be dropped first: the first owns the
/// test database.
async fn two_nodes(redis: &str, prefix: &str) -> (TestApp, FakeOllama, TestApp) {
    let (first, fake) = with_fake(Backend::Postgres, |s| {
        s.redis.redis_url = Some(redis.to_owned());
        s.redis.redis_prefix = prefix.to_owned();
    })
    .await
    .unwrap();
    let database = first.state.settings().database.url().to_owned();
    let ollama = fake.url.clone();
    let second = spawn_app_with(Backend::Sqlite, |s| {
        s.database.database_url = Some(database);
        s.ollama.ollama_url = ollama;
        s.ollama.ollama_model = "fake-chat".to_owned();
        s.redis.redis_url = Some(redis.to_owned());
        s.redis.redis_prefix = prefix.to_owned();
    })
    .await
    .unwrap();
    (first, fake, second)
}

/// Calls `check` every 20 ms, for up to 10 s, until it holds; whether it did.
async fn poll_until(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sharing_redis_carry_a_conversation_and_its_cancel() {
    let Some(redis) = redis_for_two_nodes() else {
        return;
    };
    let (first, fake, second) = two_nodes(&redis, &fresh_prefix()).await;
    let ready = second
        .call(Method::GET, "/ready", None, None)
        .await
        .expect(200);
    assert_eq!(ready["components"]["redis"]["status"], "ok", "{ready}");
    a_conversation_followed_from_another_socket(&first, &second, &fake).await;
    drop(second); // before the first (see two_nodes)
}

/// A Redis server of the test's own, which it stops and starts again.
struct OwnRedis {
    port: u16,
    server: Option<Child>,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, server: None };
        redis.run().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server and returns once it accepts connections.
    async fn run(&mut self) {
        let server = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting redis-server (Debian's redis-server package; make test installs it)");
        self.server = Some(server);
        let port = self.port;
        let listening = poll_until(async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(listening, "redis-server did not listen on port {port}");
    }

    /// Kills the server, as a crash would.
    async fn kill(&mut self) {
        let mut server = self.server.take().expect("a running server");
        server.kill().await.unwrap();
    }
}

/// Polls `node`'s `/ready` until Redis is reported `status`.
async fn until_redis_is(node: &TestApp, status: &str) {
    let reported = poll_until(async || {
        let ready = node.call(Method::GET, "/ready", None, None).await;
        ready.body["components"]["redis"]["status"] == status
    })
    .await;
    assert!(reported, "/ready never reported Redis {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_each_other_again_after_redis_restarts() {
    if redis_for_two_nodes().is_none() {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let prefix = fresh_prefix();
    let (first, fake, second) = two_nodes(&redis.url(), &prefix).await;
    a_conversation_followed_from_another_socket(&first, &second, &fake).await;

    // Without Redis each node still answers its own sockets.
    redis.kill().await;
    until_redis_is(&first, "down").await;
    until_redis_is(&second, "down").await;
    let mut asking = SocketClient::connect(&first.url(""), None).await;
    fake.then(Reply::say("Tenemos la Licuadora Oster 600W [1]."));
    asking.ask("quiero una licuadora", None).await;
    let answered = asking.until_end().await;
    assert_eq!(answered.last_event, "response", "{}", answered.last);
    assert_eq!(
        answered.last["response"],
        "Tenemos la Licuadora Oster 600W [1]."
    );

    // Redis stays away longer than a node's own reconnection attempts after its
    // last command (about 1.5 s): from then on the second node, asked nothing, can
    // only find it again by its periodic check (the first may still be sending
    // the followers' pieces of the answer above, each a new attempt). This is the
    // outage's length, not a wait for anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.run().await;
    // Both nodes subscribe again by themselves, nothing asked of them meanwhile.
    let mut watching = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cancels = format!("{prefix}-cancel");
    let mut subscribed = 0;
    poll_until(async || {
        let (_, count): (String, u32) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&cancels)
            .query_async(&mut watching)
            .await
            .unwrap();
        subscribed = count;
        subscribed == 2
    })
    .await;
    assert_eq!(
        subscribed, 2,
        "the nodes did not subscribe again to {cancels}"
    );

    // Without restarting either node, conversations and cancels cross between
    // them again.
    until_redis_is(&first, "ok").await;
    until_redis_is(&second, "ok").await;
    a_conversation_followed_from_another_socket(&first, &second, &fake).await;
    drop(second); // before the first (see two_nodes)
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_with_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let mut settings = test_settings(&dir);
    settings.redis.redis_url = Some("redis://:secreto@127.0.0.1:9/0".to_owned());
    let Err(err) = tendero::server::Services::build(settings).await else {
        panic!("the server started without its Redis");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains("connecting to Redis (redis://:***@127.0.0.1:9/0)"),
        "{message}"
    );
    assert!(!message.contains("secreto"), "{message}");

    let mut settings = test_settings(&dir);
    settings.redis.redis_url = Some("redis://127.0.0.1:6379?protocol=resp2".to_owned());
    let Err(err) = tendero::server::Services::build(settings).await else {
        panic!("the server started on RESP2");
    };
    assert!(format!("{err:#}").contains("needs RESP3"), "{err:#}");
}

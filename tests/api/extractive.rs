//! The extractive generator (no model) on the demo shop, against judged questions:
//! a question the shop's documents answer is answered by the passage, a product the
//! catalog has is listed, and a product it does not have is not replaced by
//! unrelated ones. The same questions are the measurement in docs/search.md.

use crate::agent::ask;
use crate::helpers::{Backend, spawn_app_with};

/// What a judged question should get.
enum Expect {
    /// The answer opens with a passage of the document whose title holds this.
    Passage(&'static str),
    /// The answer lists first a product whose name holds this.
    Product(&'static str),
    /// The answer says nothing matched.
    Nothing,
}

const JUDGED: [(&str, Expect); 10] = [
    (
        "¿Cuál es la política de devoluciones?",
        Expect::Passage("devoluciones"),
    ),
    ("¿Cuánto tarda un envío?", Expect::Passage("Envíos")),
    ("¿Qué medios de pago aceptan?", Expect::Passage("pago")),
    (
        "¿Cuál es el horario de atención?",
        Expect::Passage("Horarios"),
    ),
    ("¿Tienen licuadoras?", Expect::Product("Licuadora")),
    (
        "busco un taladro inalámbrico",
        Expect::Product("Taladro percutor inalámbrico"),
    ),
    (
        "licuadora de vaso de vidrio",
        Expect::Product("Licuadora Oster de 10 velocidades vaso de vidrio"),
    ),
    ("¿Tienen helicópteros?", Expect::Nothing),
    ("¿Venden pianos de cola?", Expect::Nothing),
    ("quiero una guitarra eléctrica", Expect::Nothing),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judged_questions_on_the_demo_shop_get_what_answers_them() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.demo = true;
        s.limits.chat_rate_limit_burst = 100;
    })
    .await
    .unwrap();
    let mut wrong = Vec::new();
    for (question, expect) in JUDGED {
        let answer = ask(&app, question, None).await.expect(200);
        assert_eq!(answer["generator"], "extractive");
        let response = answer["response"].as_str().unwrap();
        let right = match expect {
            Expect::Passage(title) => {
                response.starts_with("Según ")
                    && response.lines().next().is_some_and(|l| l.contains(title))
                    && !response.contains("\n1. ")
            }
            Expect::Product(name) => response
                .lines()
                .find(|l| l.starts_with("1. "))
                .is_some_and(|l| l.contains(name)),
            Expect::Nothing => response.starts_with("No encontré"),
        };
        if !right {
            wrong.push(format!("{question}\n{response}\n"));
        }
    }
    assert!(wrong.is_empty(), "answered wrongly:\n{}", wrong.join("\n"));
}

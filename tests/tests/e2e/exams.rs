//! Exams through the API: a bank validated by topic, an exam drawing from it, attempts the
//! server times (late answers refused, an abandoned attempt graded at its deadline) and
//! grades, answers unreachable before the exam closes, attempts limited, practical scores,
//! and transcripts read only by their owner and those responsible for them.

use std::collections::HashMap;

use chrono::TimeDelta;
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field, reason};

const SAVE_Q: &str =
    "mutation($i: SaveExamQuestionInput!) { saveExamQuestion(input: $i) { question { id answer options } } }";
const CREATE: &str = "mutation($i: CreateExamInput!) { createExam(input: $i) { exam { id questionCount } } }";
const ATTEMPT: &str = "id number deadline secondsLeft submittedAt score passed questions { id kind stem options chosen } review { questionId right correct explanation }";

fn start_q() -> String {
    format!("mutation($i: StartExamAttemptInput!) {{ startExamAttempt(input: $i) {{ attempt {{ {ATTEMPT} }} }} }}")
}

fn answer_q() -> String {
    format!("mutation($i: AnswerExamQuestionInput!) {{ answerExamQuestion(input: $i) {{ attempt {{ {ATTEMPT} }} }} }}")
}

fn submit_q() -> String {
    format!("mutation($i: SubmitExamAttemptInput!) {{ submitExamAttempt(input: $i) {{ attempt {{ {ATTEMPT} }} }} }}")
}

async fn user_id(s: &TestServer, token: &str) -> String {
    s.ok(Some(token), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned()
}

/// A question: topic, kind, stem, options, the right options' indexes.
type BankQuestion = (&'static str, &'static str, &'static str, Vec<&'static str>, Vec<usize>);

/// The bank.
fn bank() -> Vec<BankQuestion> {
    vec![
        (
            "电梯安全",
            "SINGLE",
            "电梯困人时首先应当",
            vec!["安抚乘客并通知维保单位", "强行扒门", "切断大楼总电源"],
            vec![0],
        ),
        ("电梯安全", "SINGLE", "电梯年检的周期是", vec!["每年", "每三年", "每五年"], vec![0]),
        ("电梯安全", "SINGLE", "电梯机房钥匙应由谁保管", vec!["专人", "任何员工", "业主"], vec![0]),
        (
            "消防",
            "MULTIPLE",
            "干粉灭火器适用于扑灭",
            vec!["固体火灾", "液体火灾", "带电设备火灾", "金属火灾"],
            vec![0, 1, 2],
        ),
        ("消防", "TRUE_FALSE", "消防通道可以临时堆放物品", vec![], vec![1]),
    ]
}

#[tokio::test]
async fn exams_are_timed_graded_and_keep_their_answers_secret() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech1 = s.sign_in("tech1").await;
    let t1 = user_id(&s, &tech1).await;

    // the bank: validated, and none of the staff's business
    let mut right: HashMap<String, Vec<String>> = HashMap::new();
    for (topic, kind, stem, options, answer) in bank() {
        let q = s
            .ok(
                Some(&admin),
                SAVE_Q,
                json!({"i": {"topic": topic, "kind": kind, "stem": stem, "options": options,
                                                    "answer": answer, "explanation": "见培训教材"}}),
            )
            .await["saveExamQuestion"]["question"]
            .clone();
        let opts: Vec<String> =
            q["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_owned()).collect();
        right.insert(stem.to_owned(), answer.iter().map(|i| opts[*i].clone()).collect());
    }
    for (i, f) in [
        (json!({"topic": "消防", "kind": "SINGLE", "stem": "题", "options": ["甲", "乙"], "answer": [2]}), "answer"),
        (json!({"topic": "消防", "kind": "SINGLE", "stem": "题", "options": ["甲", "乙"], "answer": [0, 1]}), "answer"),
        (json!({"topic": "消防", "kind": "MULTIPLE", "stem": "题", "options": ["甲"], "answer": [0]}), "options"),
    ] {
        let r = s.gql(Some(&admin), SAVE_Q, json!({"i": i})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", f), "{r}");
    }
    let q = json!({"i": {"topic": "消防", "kind": "SINGLE", "stem": "题", "options": ["甲", "乙"], "answer": [0]}});
    assert_eq!(code(&s.gql(Some(&tech1), SAVE_Q, q).await), "FORBIDDEN");
    let bank_q = "{ examQuestions { edges { node { id answer } } } }";
    assert_eq!(code(&s.gql(Some(&tech1), bank_q, json!({})).await), "FORBIDDEN");

    // an exam of the estate: two topics, two attempts, pass mark 50, for tech1
    let estate: String =
        sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY'").fetch_one(&s.db).await.unwrap();
    let now = s.clock_now();
    let exam = json!({"projectId": estate, "title": "电梯与消防安全考试", "draws": [{"topic": "电梯安全", "count": 2}, {"topic": "消防", "count": 2}],
        "timeLimitMinutes": 30, "attemptsAllowed": 2, "passMark": 50,
        "opensAt": (now - TimeDelta::minutes(1)).to_rfc3339(), "closesAt": (now + TimeDelta::hours(2)).to_rfc3339(),
        "candidateIds": [t1]});
    let mut too_many = exam.clone();
    too_many["draws"] = json!([{"topic": "电梯安全", "count": 5}]);
    let r = s.gql(Some(&admin), CREATE, json!({"i": too_many})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "draws"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["details"]["available"], 3);
    let e = s.ok(Some(&admin), CREATE, json!({"i": exam})).await["createExam"]["exam"].clone();
    assert_eq!(e["questionCount"], 4);
    let exam_id = e["id"].as_str().unwrap().to_owned();
    let told = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'tech1' AND n.category = 'training'";
    assert_eq!(s.scalar(told).await, 1, "the candidate is told");
    let mine = s.ok(Some(&tech1), "{ exams(mine: true) { edges { node { id title } } } }", json!({})).await;
    assert_eq!(mine["exams"]["edges"][0]["node"]["id"], exam_id.as_str());
    // not a candidate: not found
    let tech2 = s.sign_in("tech2").await;
    let r = s.gql(Some(&tech2), &start_q(), json!({"i": {"examId": exam_id}})).await;
    assert_eq!(code(&r), "NOT_FOUND");

    // an attempt: four questions, no answer anywhere; a retry and a second start resume it
    let start = json!({"i": {"examId": exam_id, "clientMutationId": "start-1"}});
    let a = s.ok(Some(&tech1), &start_q(), start.clone()).await["startExamAttempt"]["attempt"].clone();
    assert_eq!(a["questions"].as_array().unwrap().len(), 4);
    assert_eq!(a["review"], Value::Null);
    assert!(a["secondsLeft"].as_i64().unwrap() > 1700);
    let again = s.ok(Some(&tech1), &start_q(), start).await["startExamAttempt"]["attempt"]["id"].clone();
    let resumed =
        s.ok(Some(&tech1), &start_q(), json!({"i": {"examId": exam_id}})).await["startExamAttempt"]["attempt"]["id"]
            .clone();
    assert_eq!((&again, &resumed), (&a["id"], &a["id"]));
    let sneak = s
        .gql(Some(&tech1), "query($i: ID!) { examAttempt(id: $i) { questions { answer } } }", json!({"i": a["id"]}))
        .await;
    assert_eq!(code(&sneak), "VALIDATION", "no field carries the answer: {sneak}");
    let snoop = s.gql(Some(&tech2), "query($i: ID!) { examAttempt(id: $i) { id } }", json!({"i": a["id"]})).await;
    assert_eq!(code(&snoop), "NOT_FOUND", "another's attempt");

    // answers by place as shown; one deliberately wrong
    let mut wrong_one = None;
    for q in a["questions"].as_array().unwrap() {
        let stem = q["stem"].as_str().unwrap();
        let opts: Vec<&str> = q["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
        let mut choices: Vec<usize> = right[stem].iter().map(|t| opts.iter().position(|o| o == t).unwrap()).collect();
        if wrong_one.is_none() && q["kind"] == "SINGLE" {
            choices = vec![(choices[0] + 1) % opts.len()];
            wrong_one = Some(q["id"].clone());
        }
        let bad = s
            .gql(Some(&tech1), &answer_q(), json!({"i": {"attemptId": a["id"], "questionId": q["id"], "choices": [9]}}))
            .await;
        assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "choices"));
        let r = s
            .ok(
                Some(&tech1),
                &answer_q(),
                json!({"i": {"attemptId": a["id"], "questionId": q["id"], "choices": choices}}),
            )
            .await;
        let shown = r["answerExamQuestion"]["attempt"]["questions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == q["id"])
            .unwrap()
            .clone();
        assert_eq!(shown["chosen"].as_array().unwrap().len(), choices.len());
    }
    let done =
        s.ok(Some(&tech1), &submit_q(), json!({"i": {"attemptId": a["id"]}})).await["submitExamAttempt"]["attempt"]
            .clone();
    assert_eq!(num(&done["score"]), 75.0, "{done}");
    assert_eq!(done["passed"], true);
    assert_eq!(done["review"], Value::Null, "no answers while the exam is open");
    let late = s
        .gql(Some(&tech1), &answer_q(), json!({"i": {"attemptId": a["id"], "questionId": wrong_one, "choices": [0]}}))
        .await;
    assert_eq!(code(&late), "CONFLICT", "{late}");
    // a reader sees the score, not the answers, while the exam is open
    let manager = s.sign_in("manager").await;
    let peek = s
        .ok(
            Some(&manager),
            "query($i: ID!) { examAttempt(id: $i) { score questions { id chosen } } }",
            json!({"i": a["id"]}),
        )
        .await;
    assert_eq!(peek["examAttempt"]["questions"], json!([]), "{peek}");
    assert_eq!(num(&peek["examAttempt"]["score"]), 75.0);
    // a project's manager does not read the company's bank (its answers)
    assert_eq!(code(&s.gql(Some(&manager), bank_q, json!({})).await), "FORBIDDEN");
    // a drawn question keeps its answer
    let drawn = &a["questions"][0];
    let stem = drawn["stem"].as_str().unwrap();
    let (topic, kind, _, options, answer) = bank().into_iter().find(|b| b.2 == stem).unwrap();
    let other = if answer[0] == 0 { 1 } else { 0 };
    let change = json!({"i": {"id": drawn["id"], "topic": topic, "kind": kind, "stem": stem, "options": options, "answer": [other]}});
    let r = s.gql(Some(&admin), SAVE_Q, change).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "answer"), "{r}");

    // the second attempt runs out of time: answers refused, graded at its deadline
    let b =
        s.ok(Some(&tech1), &start_q(), json!({"i": {"examId": exam_id}})).await["startExamAttempt"]["attempt"].clone();
    assert_eq!(b["number"], 2);
    s.advance(31 * 60);
    let tech1 = s.sign_in("tech1").await;
    let q0 = b["questions"][0]["id"].clone();
    let r =
        s.gql(Some(&tech1), &answer_q(), json!({"i": {"attemptId": b["id"], "questionId": q0, "choices": [0]}})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "TIME_UP"), "{r}");
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let graded = s
        .ok(Some(&tech1), "query($i: ID!) { examAttempt(id: $i) { score passed submittedAt } }", json!({"i": b["id"]}))
        .await;
    assert_eq!(num(&graded["examAttempt"]["score"]), 0.0, "{graded}");
    let r = s.gql(Some(&tech1), &start_q(), json!({"i": {"examId": exam_id}})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "NO_ATTEMPTS_LEFT"));

    // once the exam closes, the review shows the right answers
    s.advance(2 * 3600);
    let tech1 = s.sign_in("tech1").await;
    let reviewed = s
        .ok(Some(&tech1), &format!("query($i: ID!) {{ examAttempt(id: $i) {{ {ATTEMPT} }} }}"), json!({"i": a["id"]}))
        .await;
    let review = reviewed["examAttempt"]["review"].as_array().unwrap().clone();
    assert_eq!(review.len(), 4);
    assert_eq!(review.iter().filter(|r| r["correct"] == true).count(), 3);
    assert!(review.iter().all(|r| !r["right"].as_array().unwrap().is_empty()));

    // practical assessments and the transcript
    let manager = s.sign_in("manager").await;
    let score = "mutation($i: ScorePracticalInput!) { scorePractical(input: $i) { practicalScoreId } }";
    let p = json!({"userId": t1, "projectId": estate, "title": "电梯困人救援演练", "score": "88.5", "passed": true});
    s.ok(Some(&manager), score, json!({"i": p})).await;
    let r = s.gql(Some(&manager), score, json!({"i": with(&p, json!({"score": "120"}))})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "score"));
    assert_eq!(code(&s.gql(Some(&tech1), score, json!({"i": p})).await), "FORBIDDEN");
    let t = "query($u: ID!) { transcript(userId: $u) { exams { title number score passed } practicals { title score passed } certificates { kind } } }";
    let mine = s.ok(Some(&tech1), t, json!({"u": t1})).await["transcript"].clone();
    assert_eq!(mine["exams"].as_array().unwrap().len(), 2, "{mine}");
    assert_eq!(num(&mine["practicals"][0]["score"]), 88.5);
    let seen = s.ok(Some(&manager), t, json!({"u": t1})).await;
    assert_eq!(seen["transcript"]["exams"][0]["title"], "电梯与消防安全考试");
    let tech2 = s.sign_in("tech2").await;
    assert_eq!(code(&s.gql(Some(&tech2), t, json!({"u": t1})).await), "NOT_FOUND", "not a colleague's transcript");
    assert_eq!(s.scalar(told).await, 2, "told of the practical score too");
}

fn with(v: &Value, extra: Value) -> Value {
    let mut v = v.clone();
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn num(v: &Value) -> f64 {
    v.as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN)
}

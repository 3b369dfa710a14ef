//! 考核 types.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

crate::text_enum! {
    /// 题型
    pub enum QuestionKind {
        /// 单选
        Single = "single",
        /// 多选: every right option and no other
        Multiple = "multiple",
        /// 判断: the options are 正确 and 错误
        TrueFalse = "true_false",
    }
}

/// 试题, with its right answers (for those who manage the bank only).
#[derive(Debug, Clone)]
pub struct Question {
    pub id: Uuid,
    pub company_id: Uuid,
    pub topic: String,
    pub kind: QuestionKind,
    pub stem: String,
    pub options: Vec<String>,
    /// indexes into `options`, ascending
    pub answer: Vec<i16>,
    pub explanation: String,
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

/// How many questions of a topic an exam draws.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Draw {
    pub topic: String,
    pub count: i32,
}

/// 考试
#[derive(Debug, Clone)]
pub struct Exam {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Option<Uuid>,
    pub title: String,
    pub draws: Vec<Draw>,
    pub time_limit_minutes: i32,
    pub attempts_allowed: i32,
    pub pass_mark: i32,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// 答卷
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: Uuid,
    pub exam_id: Uuid,
    pub company_id: Uuid,
    pub user_id: Uuid,
    pub number: i32,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// in the order shown
    pub questions: Vec<Uuid>,
    /// per question, the original option indexes in the order shown
    pub option_orders: std::collections::HashMap<Uuid, Vec<i16>>,
    /// per question, the original option indexes chosen
    pub answers: std::collections::HashMap<Uuid, Vec<i16>>,
    pub score: Option<Decimal>,
    pub passed: Option<bool>,
}

/// 实操考核
#[derive(Debug, Clone)]
pub struct Practical {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Option<Uuid>,
    pub user_id: Uuid,
    pub title: String,
    pub score: Decimal,
    pub passed: bool,
    pub note: String,
    pub scored_by: Uuid,
    pub scored_at: DateTime<Utc>,
}

/// Whether the chosen options are exactly the right ones.
pub fn is_right(answer: &[i16], chosen: &[i16]) -> bool {
    let mut a = answer.to_vec();
    let mut c = chosen.to_vec();
    a.sort_unstable();
    a.dedup();
    c.sort_unstable();
    c.dedup();
    !c.is_empty() && a == c
}

/// A grade out of 100 with two decimals, half up.
pub fn grade(right: usize, total: usize) -> Decimal {
    if total == 0 {
        return Decimal::ZERO;
    }
    (Decimal::from(right as i64) * Decimal::from(100) / Decimal::from(total as i64))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_and_only_the_right_options() {
        assert!(is_right(&[0, 2], &[2, 0]));
        assert!(!is_right(&[0, 2], &[0]));
        assert!(!is_right(&[0, 2], &[0, 1, 2]));
        assert!(!is_right(&[1], &[]));
        assert_eq!(grade(2, 3).to_string(), "66.67");
        assert_eq!(grade(0, 0), Decimal::ZERO);
    }
}

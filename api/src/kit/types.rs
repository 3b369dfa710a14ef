//! Values parsed at the edge: once a service holds a `Phone` or an `IdCardNumber` it is
//! valid. Each constructor names the GraphQL field it validates, so the VALIDATION error
//! can say which input was wrong; the messages are written once, here.

use std::borrow::Cow;

use rust_decimal::Decimal;
use wuye_validate::ValidationError as V;

use crate::kit::error::{AppError, Msg};

type Field = Cow<'static, str>;

fn invalid(field: impl Into<Field>, msg: Msg) -> AppError {
    AppError::validation(field, msg)
}

/// 中国大陆手机号 a mainland mobile number, 11 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: impl Into<Field>, input: &str) -> Result<Self, AppError> {
        wuye_validate::normalize_phone(input).map(Phone).map_err(|_| {
            invalid(field, Msg::new("请输入正确的11位手机号", "Enter a valid 11-digit mainland mobile number"))
        })
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// 138****0001
    pub fn masked(s: &str) -> String {
        if s.len() == 11 && s.is_ascii() { format!("{}****{}", &s[..3], &s[7..]) } else { "****".into() }
    }
}

/// 居民身份证号 an 18-character resident ID-card number with a valid GB 11643 check digit.
#[derive(Clone, PartialEq, Eq)]
pub struct IdCardNumber(String);

impl std::fmt::Debug for IdCardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdCardNumber({})", Self::masked(&self.0))
    }
}

impl IdCardNumber {
    pub fn parse(field: impl Into<Field>, input: &str) -> Result<Self, AppError> {
        match wuye_validate::validate_id_card(input) {
            Ok(info) => Ok(IdCardNumber(info.normalized)),
            Err(V::IdCardBirthDate) => Err(invalid(
                field,
                Msg::new("身份证号中的出生日期无效", "The birth date in the ID-card number is invalid"),
            )),
            Err(V::IdCardChecksum) => {
                Err(invalid(field, Msg::new("身份证号校验位不正确", "The ID-card number's check digit is wrong")))
            }
            Err(_) => Err(invalid(
                field,
                Msg::new(
                    "身份证号应为18位：17位数字加1位校验码",
                    "An ID-card number has 18 characters: 17 digits and a check digit",
                ),
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// 110105********002X
    pub fn masked(s: &str) -> String {
        if s.len() == 18 && s.is_ascii() { format!("{}********{}", &s[..6], &s[14..]) } else { "****".into() }
    }
}

/// 统一社会信用代码 unified social credit code (GB 32100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(field: impl Into<Field>, input: &str) -> Result<Self, AppError> {
        match wuye_validate::validate_credit_code(input) {
            Ok(c) => Ok(CreditCode(c)),
            Err(V::CreditCodeChecksum) => Err(invalid(
                field,
                Msg::new("统一社会信用代码校验位不正确", "The credit code's check character is wrong"),
            )),
            Err(_) => Err(invalid(
                field,
                Msg::new(
                    "统一社会信用代码应为18位数字或大写字母（不含I、O、S、V、Z）",
                    "A credit code has 18 digits or capital letters (no I, O, S, V, Z)",
                ),
            )),
        }
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A new password that meets the policy: 8 to 64 characters with letters and digits.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(field: impl Into<Field>, input: &str) -> Result<Self, AppError> {
        let n = input.chars().count();
        let letters = input.chars().any(|c| c.is_ascii_alphabetic());
        let digits = input.chars().any(|c| c.is_ascii_digit());
        if (8..=64).contains(&n) && letters && digits {
            Ok(NewPassword(input.to_owned()))
        } else {
            Err(invalid(
                field,
                Msg::new(
                    "密码需8至64位，且同时包含字母和数字",
                    "A password needs 8 to 64 characters with both letters and digits",
                ),
            ))
        }
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Trimmed, non-empty text of bounded length (names, codes, addresses).
pub fn text(field: impl Into<Field>, input: &str, max: usize) -> Result<String, AppError> {
    let t = input.trim();
    if t.is_empty() {
        return Err(invalid(field, Msg::new("不能为空", "Must not be empty")));
    }
    if t.chars().count() > max {
        return Err(invalid(
            field,
            Msg::owned(format!("不能超过{max}个字符"), format!("Must be at most {max} characters")),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid(field, Msg::new("含有非法字符", "Contains control characters")));
    }
    Ok(t.to_owned())
}

/// A search term for `LIKE '%' || $1 || '%' ESCAPE '\'`: trimmed, `\`, `%` and `_` taken
/// literally, `None` when empty.
pub fn like_term(input: Option<&str>) -> Option<String> {
    let t = input.map(str::trim).filter(|s| !s.is_empty())?;
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    Some(out)
}

/// VALIDATION naming the first of `fields` that is missing.
pub fn required(fields: &[(&'static str, bool)]) -> Result<(), AppError> {
    match fields.iter().find(|(_, present)| !present) {
        Some((field, _)) => Err(invalid(*field, Msg::new("不能为空", "Must not be empty"))),
        None => Ok(()),
    }
}

/// One of a fixed set of codes (lower-cased).
pub fn one_of(field: impl Into<Field>, value: &str, allowed: &[&str]) -> Result<String, AppError> {
    let v = value.trim().to_ascii_lowercase();
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(invalid(
            field,
            Msg::owned(format!("取值应为：{}", allowed.join("、")), format!("Must be one of: {}", allowed.join(", "))),
        ))
    }
}

/// Optional free text: empty is allowed.
pub fn optional_text(field: impl Into<Field>, input: Option<&str>, max: usize) -> Result<String, AppError> {
    match input.map(str::trim) {
        None | Some("") => Ok(String::new()),
        Some(t) => text(field, t, max),
    }
}

/// An area in square metres: non-negative, at most 2 decimals, below 10^8.
pub fn area(field: impl Into<Field>, value: Decimal) -> Result<Decimal, AppError> {
    if value.is_sign_negative() || value.scale() > 2 || value >= Decimal::from(100_000_000) {
        return Err(invalid(
            field,
            Msg::new("面积应为非负数，最多两位小数", "An area is a non-negative number with at most 2 decimals"),
        ));
    }
    Ok(value)
}

/// A geofence: centre (WGS-84 / GCJ-02 as the app reports it) and a radius in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geofence {
    pub lat: f64,
    pub lng: f64,
    pub radius_m: i32,
}

impl Geofence {
    pub fn parse(field: &'static str, lat: f64, lng: f64, radius_m: i32) -> Result<Self, AppError> {
        let ok = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) && (10..=5000).contains(&radius_m);
        if ok {
            Ok(Geofence { lat, lng, radius_m })
        } else {
            Err(invalid(
                field,
                Msg::new(
                    "电子围栏无效：纬度-90~90，经度-180~180，半径10~5000米",
                    "Invalid geofence: latitude -90..90, longitude -180..180, radius 10..5000 m",
                ),
            ))
        }
    }
}

/// A calendar day a business system can mean (1970 to 2199): anything else is a typo or an
/// attack, and would not fit the database's date range either.
pub fn sane_date(field: impl Into<Field>, d: chrono::NaiveDate) -> Result<chrono::NaiveDate, AppError> {
    use chrono::Datelike;
    if (1970..=2199).contains(&d.year()) {
        Ok(d)
    } else {
        Err(invalid(field, Msg::new("日期应在1970年到2199年之间", "A date between 1970 and 2199")))
    }
}

/// An instant a business system can mean (1970 to 2199).
pub fn sane_time(
    field: impl Into<Field>,
    t: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, AppError> {
    sane_date(field, t.date_naive()).map(|_| t)
}

/// Metres between two points (haversine).
pub fn distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

/// Page size requested by a client, clamped by the configured limits.
pub fn page_size(first: Option<i32>, default: usize, max: usize) -> Result<usize, AppError> {
    match first {
        None => Ok(default),
        Some(n) if n >= 1 && (n as usize) <= max => Ok(n as usize),
        Some(_) => Err(invalid(
            "first",
            Msg::owned(format!("每页条数应在1到{max}之间"), format!("first must be between 1 and {max}")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(Phone::masked("13800000001"), "138****0001");
        assert_eq!(IdCardNumber::masked("11010519491231002X"), "110105********002X");
    }

    #[test]
    fn passwords() {
        assert!(NewPassword::parse("p", "Wuye@2026").is_ok());
        assert!(NewPassword::parse("p", "short1").is_err());
        assert!(NewPassword::parse("p", "onlyletters").is_err());
        assert!(NewPassword::parse("p", "1234567890").is_err());
    }

    #[test]
    fn like_terms_are_literal() {
        assert_eq!(like_term(Some(" 50%_a\\b ")).as_deref(), Some("50\\%\\_a\\\\b"));
        assert_eq!(like_term(Some("  ")), None);
        assert_eq!(like_term(None), None);
    }

    #[test]
    fn areas() {
        assert!(area("a", Decimal::new(8912, 2)).is_ok());
        assert!(area("a", Decimal::new(-1, 0)).is_err());
        assert!(area("a", Decimal::new(1, 3)).is_err());
    }
}

//! 金额 money: yuan with fen, `rust_decimal::Decimal` in Rust, `NUMERIC(14,2)` in
//! PostgreSQL, a string in GraphQL ("1234.50"). Parsed at the edge, never a float.
//! Computed amounts (area × unit price, usage × tier price) are rounded half-up to the
//! fen once, per bill line, with `Money::round`.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::error::{AppError, Msg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(Decimal);

/// `NUMERIC(14,2)` holds twelve digits before the point: 10^12.
const LIMIT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// An amount a client sent: at most two decimals, within `NUMERIC(14,2)`; negative
    /// only where `allow_negative` (adjustments, refunds).
    pub fn parse(field: &'static str, input: &str, allow_negative: bool) -> Result<Money, AppError> {
        let t = input.trim();
        let digits = t.strip_prefix('-').unwrap_or(t);
        // plain decimal notation only: no exponent, sign, spaces or separators inside
        let plain = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().filter(|b| *b == b'.').count() <= 1
            && !digits.starts_with('.')
            && !digits.ends_with('.');
        if !plain {
            return Err(invalid(field));
        }
        let d: Decimal = t.parse().map_err(|_| invalid(field))?;
        Money::from_decimal(field, d, allow_negative)
    }

    pub fn from_decimal(field: &'static str, d: Decimal, allow_negative: bool) -> Result<Money, AppError> {
        if d.scale() > 2 && d.normalize().scale() > 2 {
            return Err(AppError::validation(field, Msg::new("金额最多两位小数", "An amount has at most 2 decimals")));
        }
        if d.abs() >= LIMIT || (d.is_sign_negative() && !d.is_zero() && !allow_negative) {
            return Err(invalid(field));
        }
        Ok(Money(d.round_dp(2)))
    }

    /// A computed amount rounded half-up (away from zero at .5) to the fen.
    pub fn round(d: Decimal) -> Money {
        Money(d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    pub fn yuan(self) -> Decimal {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).filter(|d| d.abs() < LIMIT).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).filter(|d| d.abs() < LIMIT).map(Money)
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }
}

fn invalid(field: &'static str) -> AppError {
    AppError::validation(
        field,
        Msg::new(
            "金额格式无效，应为不超过一万亿的数字，最多两位小数",
            "Invalid amount: a number below 10^12 with at most 2 decimals",
        ),
    )
}

/// Always two decimals: `12.30`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl sqlx::Type<sqlx::Postgres> for Money {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Decimal as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Decimal as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Postgres> for Money {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <Decimal as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Money {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Money(<Decimal as sqlx::Decode<sqlx::Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_ten_to_the_twelfth() {
        assert_eq!(LIMIT, Decimal::from(1_000_000_000_000i64));
    }

    #[test]
    fn parses_amounts() {
        assert_eq!(Money::parse("amount", "12.3", false).unwrap().to_string(), "12.30");
        assert_eq!(Money::parse("amount", " 0 ", false).unwrap(), Money::ZERO);
        assert!(Money::parse("amount", "1.234", false).is_err());
        assert!(Money::parse("amount", "-1", false).is_err());
        assert!(Money::parse("amount", "-1", true).is_ok());
        assert!(Money::parse("amount", "1e3", false).is_err());
        assert!(Money::parse("amount", "NaN", false).is_err());
        assert!(Money::parse("amount", "1000000000000", false).is_err());
        assert!(Money::parse("amount", "999999999999.99", false).is_ok());
        assert!(Money::parse("amount", "1.200", false).is_ok(), "trailing zeros are not extra precision");
    }

    #[test]
    fn rounds_half_up_to_the_fen() {
        assert_eq!(Money::round(Decimal::new(12345, 3)).to_string(), "12.35");
        assert_eq!(Money::round(Decimal::new(12344, 3)).to_string(), "12.34");
        assert_eq!(Money::round(Decimal::new(-12345, 3)).to_string(), "-12.35");
        // 89.12 m² × 2.35 yuan/m² = 209.432 → 209.43
        assert_eq!(Money::round(Decimal::new(8912, 2) * Decimal::new(235, 2)).to_string(), "209.43");
    }
}

//! The rules the server and the apps share: mainland mobile numbers, resident ID-card
//! numbers (GB 11643) and unified social credit codes (GB 32100). The server links this
//! crate alone; the apps get it through the SDK (`wuye-mobile`, exported with UniFFI), so
//! an app rejects bad input before it is sent, by the same code that checks it on arrival.

/// Why an input was rejected. The server maps these to VALIDATION errors naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("not a mainland China mobile number")]
    InvalidPhone,
    #[error("ID-card number must be 18 characters: 17 digits and a check digit or X")]
    IdCardFormat,
    #[error("ID-card number has an impossible birth date")]
    IdCardBirthDate,
    #[error("ID-card number check digit does not match (GB 11643)")]
    IdCardChecksum,
    #[error("credit code must be 18 characters of 0-9 and A-Y without I, O, S, V, Z")]
    CreditCodeFormat,
    #[error("credit code check character does not match (GB 32100)")]
    CreditCodeChecksum,
}

/// What a valid ID-card number tells about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCardInfo {
    /// upper-case, 18 characters
    pub normalized: String,
    pub birth_year: u16,
    pub birth_month: u8,
    pub birth_day: u8,
    /// true when the sequence digit is odd (GB 11643: male)
    pub male: bool,
}

/// Normalizes a mainland mobile number (`+86 138-0000-0001` → `13800000001`).
pub fn normalize_phone(input: &str) -> Result<String, ValidationError> {
    let mut digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    if let Some(rest) = digits.strip_prefix("+86") {
        digits = rest.to_owned();
    } else if digits.len() == 13 && digits.starts_with("86") {
        digits = digits[2..].to_owned();
    }
    let bytes = digits.as_bytes();
    let ok = bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1]);
    if ok { Ok(digits) } else { Err(ValidationError::InvalidPhone) }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Validates a resident ID-card number: format, birth date and GB 11643 check digit.
pub fn validate_id_card(input: &str) -> Result<IdCardInfo, ValidationError> {
    let normalized = input.trim().to_ascii_uppercase();
    let b = normalized.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Err(ValidationError::IdCardFormat);
    }
    if !(b[17].is_ascii_digit() || b[17] == b'X') || b[0] == b'0' {
        return Err(ValidationError::IdCardFormat);
    }
    let num = |r: std::ops::Range<usize>| -> u32 { b[r].iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')) };
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    if !(1900..=2100).contains(&year) || day == 0 || day > days_in_month(year, month) {
        return Err(ValidationError::IdCardBirthDate);
    }
    let sum: u32 = b[..17].iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    if ID_CHECK[(sum % 11) as usize] != b[17] {
        return Err(ValidationError::IdCardChecksum);
    }
    let male = (b[16] - b'0') % 2 == 1;
    Ok(IdCardInfo { normalized, birth_year: year as u16, birth_month: month as u8, birth_day: day as u8, male })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

const CREDIT_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Validates a unified social credit code (统一社会信用代码, GB 32100) and returns it upper-cased.
pub fn validate_credit_code(input: &str) -> Result<String, ValidationError> {
    let normalized = input.trim().to_ascii_uppercase();
    let b = normalized.as_bytes();
    if b.len() != 18 {
        return Err(ValidationError::CreditCodeFormat);
    }
    let mut values = [0u32; 18];
    for (v, c) in values.iter_mut().zip(b) {
        *v = CREDIT_CHARS.iter().position(|x| x == c).ok_or(ValidationError::CreditCodeFormat)? as u32;
    }
    let sum: u32 = values[..17].iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    if values[17] != check {
        return Err(ValidationError::CreditCodeChecksum);
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(normalize_phone("+86 138-0000-0001"), Ok("13800000001".into()));
        assert_eq!(normalize_phone("8613912345678"), Ok("13912345678".into()));
        for bad in ["", "12800000001", "1380000000", "138000000012", "1380000000a", "23800000001"] {
            assert_eq!(normalize_phone(bad), Err(ValidationError::InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn id_cards() {
        let info = validate_id_card("11010519491231002x").unwrap();
        assert_eq!(info.normalized, "11010519491231002X");
        assert_eq!((info.birth_year, info.birth_month, info.birth_day), (1949, 12, 31));
        assert!(!info.male);
        assert_eq!(validate_id_card("110105194912310021"), Err(ValidationError::IdCardChecksum));
        assert_eq!(validate_id_card("110105194902300028"), Err(ValidationError::IdCardBirthDate));
        assert_eq!(validate_id_card("1101051949123100"), Err(ValidationError::IdCardFormat));
        assert_eq!(validate_id_card("11010519491231002Y"), Err(ValidationError::IdCardFormat));
    }

    #[test]
    fn credit_codes() {
        assert_eq!(validate_credit_code("91350100m000100y43"), Ok("91350100M000100Y43".into()));
        assert_eq!(validate_credit_code("91350100M000100Y44"), Err(ValidationError::CreditCodeChecksum));
        assert_eq!(validate_credit_code("91350100M000100I43"), Err(ValidationError::CreditCodeFormat));
    }
}

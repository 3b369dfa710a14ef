//! The server's own input rules (`wuye-validate`), exported to the apps: a phone, an
//! ID-card number or a credit code the app accepts is one the server accepts.

/// Why an input was rejected; the server answers the same input with a VALIDATION error
/// naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
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

impl From<wuye_validate::ValidationError> for ValidationError {
    fn from(e: wuye_validate::ValidationError) -> Self {
        use wuye_validate::ValidationError as V;
        match e {
            V::InvalidPhone => ValidationError::InvalidPhone,
            V::IdCardFormat => ValidationError::IdCardFormat,
            V::IdCardBirthDate => ValidationError::IdCardBirthDate,
            V::IdCardChecksum => ValidationError::IdCardChecksum,
            V::CreditCodeFormat => ValidationError::CreditCodeFormat,
            V::CreditCodeChecksum => ValidationError::CreditCodeChecksum,
        }
    }
}

/// What a valid ID-card number tells about its holder.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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
#[uniffi::export]
pub fn normalize_phone(input: String) -> Result<String, ValidationError> {
    Ok(wuye_validate::normalize_phone(&input)?)
}

/// Validates a resident ID-card number: format, birth date and GB 11643 check digit.
#[uniffi::export]
pub fn validate_id_card(input: String) -> Result<IdCardInfo, ValidationError> {
    let i = wuye_validate::validate_id_card(&input)?;
    Ok(IdCardInfo {
        normalized: i.normalized,
        birth_year: i.birth_year,
        birth_month: i.birth_month,
        birth_day: i.birth_day,
        male: i.male,
    })
}

/// Validates a unified social credit code (GB 32100) and returns it upper-cased.
#[uniffi::export]
pub fn validate_credit_code(input: String) -> Result<String, ValidationError> {
    Ok(wuye_validate::validate_credit_code(&input)?)
}

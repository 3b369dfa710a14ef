//! 财务管理 billing, by capability: fee items and prices (`fees`), meter reading
//! (`meters`), bill runs, bills and payments (`bills`), online payments and refunds (`pay`), prepaid balances (`prepaid`).

pub mod bills;
pub mod fees;
pub mod meters;
pub mod pay;
pub mod prepaid;

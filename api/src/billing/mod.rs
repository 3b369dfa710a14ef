//! 财务管理 billing, by capability: fee items and prices (`fees`), meter reading
//! (`meters`), bill runs, bills and payments (`bills`), online payments and refunds (`pay`),
//! prepaid balances (`prepaid`), printed bills and receipts (`print`).

pub mod bills;
pub mod fees;
pub mod meters;
pub mod pay;
pub mod prepaid;
pub mod print;

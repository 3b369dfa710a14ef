//! 人员管理 people: employee records and certificates (`staff`).

pub mod staff;

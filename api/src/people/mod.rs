//! 人员管理 people: employee records and certificates (`staff`), attendance (`attendance`).

pub mod attendance;
pub mod staff;

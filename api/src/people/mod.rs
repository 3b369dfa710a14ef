//! 人员管理 people: employee records and certificates (`staff`), attendance (`attendance`),
//! exams and practical assessments (`training`).

pub mod attendance;
pub mod staff;
pub mod training;

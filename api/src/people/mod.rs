//! 人员管理 people: employee records and certificates (`staff`), attendance (`attendance`),
//! courses and training sessions (`courses`), exams and practical assessments (`training`).

pub mod attendance;
pub mod courses;
pub mod staff;
pub mod training;

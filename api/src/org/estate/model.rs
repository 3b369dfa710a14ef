//! The structure of a project: buildings, their units, the houses in them, and parking.

use rust_decimal::Decimal;
use uuid::Uuid;

/// 楼栋 a building of a project.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Building {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// number of floors above ground
    pub floors: Option<i32>,
}

/// 单元 a unit (stairwell) of a building.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unit {
    pub id: Uuid,
    pub project_id: Uuid,
    pub building_id: Uuid,
    pub name: String,
}

crate::text_enum! {
    /// 房屋用途 what a house is used for
    pub enum HouseUsage {
        /// 住宅
        Residence = "residence",
        /// 商铺
        Shop = "shop",
        /// 办公
        Office = "office",
        /// 车库
        Garage = "garage",
        /// 其他
        Other = "other",
    }
}

crate::text_enum! {
    /// 房屋状态 whether anyone is linked to a house
    pub enum HouseStatus {
        /// 已入住
        Occupied = "occupied",
        /// 空置
        Vacant = "vacant",
    }
}

crate::text_enum! {
    /// 车位状态 whether a parking space has an owner
    pub enum ParkingStatus {
        /// 已售/已租
        Occupied = "occupied",
        /// 空置
        Vacant = "vacant",
    }
}

/// 房屋 a house (flat, shop, office) with its building and unit names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct House {
    pub id: Uuid,
    pub project_id: Uuid,
    pub building_id: Uuid,
    pub building_name: String,
    pub unit_id: Uuid,
    pub unit_name: String,
    pub room_no: String,
    /// negative below ground, never 0
    pub floor: i32,
    /// 建筑面积 m²
    pub building_area: Decimal,
    /// 套内面积 m²
    pub indoor_area: Option<Decimal>,
    pub usage: HouseUsage,
    pub status: HouseStatus,
}

/// 车位 a parking space of a project.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParkingSpace {
    pub id: Uuid,
    pub project_id: Uuid,
    pub code: String,
    /// m²
    pub area: Option<Decimal>,
    pub status: ParkingStatus,
    pub owner_id: Option<Uuid>,
}

//! What the user and the platform team ask for: the XR's spec (`xr`), the
//! Composition step's input (`input`, with its rollout policy in
//! `upgrades`), and the settings both resolve to
//! (`settings`, with what they activate in
//! `activation`), validated once so the rest of the code can trust them.

pub mod activation;
pub mod crossplane;
pub mod duration;
pub mod glob;
pub mod input;
pub mod limits;
pub mod load;
pub mod package_fields;
pub mod policy;
pub mod scan;
pub mod settings;
pub mod upgrades;
pub mod verify;
pub mod xr;

pub use input::Input;
pub use settings::Settings;
pub use upgrades::{Upgrades, Weekday, Window};
pub use xr::XrSpec;

//! The typed request/response core: everything the composer needs from the
//! protocol, as plain JSON values and small helpers, so composition code never
//! touches protobuf Structs directly.

pub mod request;
pub mod response;
pub mod structs;

pub use request::Request;
pub use response::Response;

//! The typed request/response core: everything the composer needs from the
//! protocol, as plain JSON values, typed values read straight from protobuf
//! (`de`), and small helpers.

pub mod de;
pub mod request;
pub mod response;
pub mod structs;

pub use request::Request;
pub use response::Response;

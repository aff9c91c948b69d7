//! A guest built against `cwpub:publisher@0.2.0`, which this host does not
//! speak; loading it must fail with a message naming both versions.

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "wit" });
}

struct WrongVersion;

impl bindings::exports::cwpub::publisher::publisher::Guest for WrongVersion {
    fn run(job: String) -> Result<Vec<String>, String> {
        Ok(vec![job])
    }
}

bindings::export!(WrongVersion with_types_in bindings);

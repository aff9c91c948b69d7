//! The order of keys in a TOML file, which `toml::Table` forgets (it sorts
//! them): a tolerant second pass over the text that records every table's
//! keys as written, so string maps handed to guests (a job's `[jobs.config]`,
//! a test case's `config`) keep file order.

use serde::Deserialize;

/// One value of the document, seen only for the order of table keys and
/// the elements of arrays (scalars are empty nodes).
#[derive(Debug, Default)]
pub(crate) struct KeyOrder {
    keys: Vec<(String, KeyOrder)>,
    items: Vec<KeyOrder>,
}

impl KeyOrder {
    /// The whole document's order; empty where the text does not parse.
    pub(crate) fn of(text: &str) -> KeyOrder {
        toml::from_str(text).unwrap_or_default()
    }

    /// The value under `key` of this table, if any.
    pub(crate) fn get(&self, key: &str) -> Option<&KeyOrder> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The elements of this array (empty for anything else).
    pub(crate) fn items(&self) -> &[KeyOrder] {
        &self.items
    }

    /// This table's keys flattened with dots (`field.team`), in file order.
    pub(crate) fn flat_keys(&self) -> Vec<String> {
        fn walk(node: &KeyOrder, prefix: &str, out: &mut Vec<String>) {
            for (k, v) in &node.keys {
                let key = format!("{prefix}{k}");
                if v.keys.is_empty() {
                    out.push(key);
                } else {
                    walk(v, &format!("{key}."), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }
}

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, KeyOrder>()? {
                    keys.push((k, v));
                }
                Ok(KeyOrder {
                    keys,
                    items: Vec::new(),
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = s.next_element::<KeyOrder>()? {
                    items.push(item);
                }
                Ok(KeyOrder {
                    keys: Vec::new(),
                    items,
                })
            }
            fn visit_bool<E>(self, _: bool) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyOrder;

    #[test]
    fn keys_keep_file_order_inside_arrays_of_tables() {
        let text = "[[jobs]]\nname = \"a\"\n[jobs.config]\nzeta = \"1\"\nalpha = \"2\"\nfield.team = \"x\"\n\n[[jobs]]\nconfig = { b = \"1\", a = \"2\" }\n";
        let order = KeyOrder::of(text);
        let jobs = order.get("jobs").expect("jobs").items();
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            jobs[0].get("config").expect("config").flat_keys(),
            ["zeta", "alpha", "field.team"]
        );
        assert_eq!(
            jobs[1].get("config").expect("config").flat_keys(),
            ["b", "a"]
        );
        assert!(KeyOrder::of("not [toml").get("jobs").is_none());
    }
}

//! Core lists: "all" or a list such as "0-3,6".

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which cores shards run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreList {
    /// Every core this process may run on (its CPU affinity mask).
    All,
    List(Vec<usize>),
}

impl FromStr for CoreList {
    type Err = String;

    fn from_str(s: &str) -> Result<CoreList, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(CoreList::All);
        }
        let bad =
            || format!("{s:?} is not a core list (write e.g. \"all\", \"0-3\" or \"0,2,4-6\")");
        // Naming a core twice means the same as naming it once.
        let cores = cpus::dedup(&cpus::parse_list(s).map_err(|_| bad())?);
        if cores.is_empty() {
            return Err(bad());
        }
        Ok(CoreList::List(cores))
    }
}

impl fmt::Display for CoreList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreList::All => f.write_str("all"),
            CoreList::List(cores) => {
                let parts: Vec<String> = cores.iter().map(usize::to_string).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl Serialize for CoreList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for CoreList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CoreList, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The cores in this process's affinity mask, in order.
pub fn allowed_cores() -> Vec<usize> {
    cpus::allowed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_lists() {
        assert_eq!("all".parse::<CoreList>().unwrap(), CoreList::All);
        assert_eq!(
            "0-3".parse::<CoreList>().unwrap(),
            CoreList::List(vec![0, 1, 2, 3])
        );
        assert_eq!(
            "1, 4-5 ,1".parse::<CoreList>().unwrap(),
            CoreList::List(vec![1, 4, 5])
        );
        for bad in ["", "3-1", "x", "1,,2", "-1"] {
            assert!(bad.parse::<CoreList>().is_err(), "{bad}");
        }
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed_cores().is_empty());
    }
}

//! What the cluster says about itself: `CLUSTER NODES` (ids, roles, slots)
//! and `CLUSTER SLOTS` (which replicas serve each range), parsed.

use std::collections::BTreeMap;

use crate::connection::query;

/// A node of a [`LocalCluster`](crate::LocalCluster), as the cluster knows it.
///
/// ```no_run
/// # fn main() -> Result<(), String> {
/// let cluster = redis_harness::LocalCluster::start(3, 1)?;
/// let master = &cluster.masters()?[0];
/// let mut con = redis::Client::open(master.url()).and_then(|c| c.get_connection()).map_err(|e| e.to_string())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// The data port on 127.0.0.1 (the cluster bus is on `port + 10000`).
    pub port: u16,
    /// The node id (`CLUSTER MYID`), which survives a restart.
    pub id: String,
}

impl Node {
    /// `redis://127.0.0.1:PORT`, for `redis::Client::open`.
    ///
    /// ```
    /// let node = redis_harness::Node { port: 21000, id: "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca".into() };
    /// assert_eq!(node.url(), "redis://127.0.0.1:21000");
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) port: u16,
    pub(crate) master: bool,
    /// Flagged `fail` or `fail?` by the node whose view this is.
    pub(crate) failing: bool,
    /// Still in handshake, or without an address: not a member yet.
    pub(crate) joining: bool,
    /// The id of its master, for a replica.
    pub(crate) master_id: Option<String>,
    /// Inclusive slot ranges it serves (migration markers left out).
    pub(crate) slots: Vec<(u16, u16)>,
}

impl Entry {
    pub(crate) fn node(&self) -> Node {
        Node {
            port: self.port,
            id: self.id.clone(),
        }
    }

    pub(crate) fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    }
}

/// One node's `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The port of the node that answered.
    pub(crate) from: u16,
    pub(crate) entries: Vec<Entry>,
}

impl View {
    /// Asks the node at `port`.
    pub(crate) fn of(port: u16) -> Result<View, String> {
        let text: String = query(port, redis::cmd("CLUSTER").arg("NODES"))?;
        let entries = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(parse_entry)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("port {port}: CLUSTER NODES: {e}"))?;
        Ok(View { from: port, entries })
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub(crate) fn by_port(&self, port: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.port == port)
    }

    /// What this view says about the nodes in `live`: role, master's port,
    /// slots, and whether it considers them failing or joining. Two nodes
    /// agree when these are equal.
    pub(crate) fn summary(&self, live: &[u16]) -> BTreeMap<u16, String> {
        let mut out = BTreeMap::new();
        for &port in live {
            let text = match self.by_port(port) {
                None => "unknown".to_owned(),
                Some(e) => {
                    let role = if e.master {
                        "master".to_owned()
                    } else {
                        "replica".to_owned()
                    };
                    let of = e.master_id.as_deref().and_then(|id| self.by_id(id)).map(|m| m.port);
                    let state = if e.failing {
                        " failing"
                    } else if e.joining {
                        " joining"
                    } else {
                        ""
                    };
                    format!(
                        "{role}{}{state} slots {:?}",
                        of.map(|p| format!(" of {p}")).unwrap_or_default(),
                        e.slots
                    )
                }
            };
            out.insert(port, text);
        }
        out
    }
}

fn parse_entry(line: &str) -> Result<Entry, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return Err(format!("short line {line:?}"));
    }
    // `ip:port@cport[,hostname]`
    let addr = fields[1].split('@').next().unwrap_or_default();
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in {line:?}"))?;
    let flags: Vec<&str> = fields[2].split(',').collect();
    let has = |flag: &str| flags.contains(&flag);
    let mut slots = Vec::new();
    for field in &fields[8..] {
        // `[slot->-id]` and `[slot-<-id]` mark a migration, not ownership.
        if field.starts_with('[') {
            continue;
        }
        let range = match field.split_once('-') {
            Some((a, b)) => (a.parse(), b.parse()),
            None => (field.parse(), field.parse()),
        };
        match range {
            (Ok(a), Ok(b)) => slots.push((a, b)),
            _ => return Err(format!("bad slot range {field:?} in {line:?}")),
        }
    }
    Ok(Entry {
        id: fields[0].to_owned(),
        port,
        master: has("master"),
        failing: has("fail") || has("fail?"),
        joining: has("handshake") || has("noaddr"),
        master_id: Some(fields[3]).filter(|m| *m != "-").map(str::to_owned),
        slots,
    })
}

/// One range of `CLUSTER SLOTS`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SlotRange {
    pub(crate) start: u16,
    pub(crate) end: u16,
    pub(crate) master: u16,
    /// The replicas listed for the range (Redis leaves out failed ones).
    pub(crate) replicas: usize,
}

/// `CLUSTER SLOTS` of the node at `port`, sorted by first slot.
pub(crate) fn slot_ranges(port: u16) -> Result<Vec<SlotRange>, String> {
    let rows: Vec<Vec<redis::Value>> = query(port, redis::cmd("CLUSTER").arg("SLOTS"))?;
    let mut ranges = Vec::with_capacity(rows.len());
    for row in rows {
        let bad = || format!("port {port}: unexpected CLUSTER SLOTS row {row:?}");
        let int = |i: usize| row.get(i).and_then(|v| redis::from_redis_value_ref::<u16>(v).ok());
        let master = row
            .get(2)
            .and_then(|v| redis::from_redis_value_ref::<Vec<redis::Value>>(v).ok())
            .and_then(|node| node.get(1).and_then(|p| redis::from_redis_value_ref::<u16>(p).ok()));
        match (int(0), int(1), master) {
            (Some(start), Some(end), Some(master)) => {
                ranges.push(SlotRange {
                    start,
                    end,
                    master,
                    replicas: row.len() - 3,
                });
            }
            _ => return Err(bad()),
        }
    }
    ranges.sort();
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_nodes_line_gives_role_master_and_slots() {
        let line = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002,host2 myself,master - 0 \
                    1426238316232 2 connected 0-10 12 [13->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]";
        let e = parse_entry(line).expect("a valid line");
        assert_eq!(e.port, 30002);
        assert!(e.master && !e.failing && !e.joining);
        assert_eq!(e.master_id, None);
        assert_eq!(e.slots, vec![(0, 10), (12, 12)]);

        let line = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004 slave,fail \
                    67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238317239 4 disconnected";
        let e = parse_entry(line).expect("a valid line");
        assert!(!e.master && e.failing);
        assert_eq!(e.master_id.as_deref(), Some("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"));
        assert!(e.slots.is_empty());
    }
}

//! A table of slots with generations: connections, UDP requests and stats
//! gathers are all addressed by `(slot, generation)` in tokens and cross-shard
//! records, so that a completion or a reply for an entry that has since been
//! removed (and its slot reused) is recognised and dropped.

use runtime::next_generation;

#[derive(Debug)]
pub struct Slots<T> {
    entries: Vec<Option<T>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Stores the value `make` builds from its slot's next generation; returns
    /// the slot and that generation.
    pub fn insert(&mut self, make: impl FnOnce(u32) -> T) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.entries.push(None);
                self.generations.push(0);
                (self.entries.len() - 1) as u32
            }
        };
        let generation = next_generation(self.generations[slot as usize]);
        self.generations[slot as usize] = generation;
        self.entries[slot as usize] = Some(make(generation));
        self.live += 1;
        (slot, generation)
    }

    /// The entry in `slot` if it still has `generation`.
    pub fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut T> {
        if self.generations.get(slot as usize) != Some(&generation) {
            return None;
        }
        self.entries[slot as usize].as_mut()
    }

    /// The entry in `slot` if it still has `generation`.
    pub fn get(&self, slot: u32, generation: u32) -> Option<&T> {
        if self.generations.get(slot as usize) != Some(&generation) {
            return None;
        }
        self.entries[slot as usize].as_ref()
    }

    /// The entry in `slot`, whatever its generation.
    pub fn slot(&self, slot: u32) -> Option<&T> {
        self.entries.get(slot as usize)?.as_ref()
    }

    /// The entry in `slot`, whatever its generation.
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.entries.get_mut(slot as usize)?.as_mut()
    }

    pub fn remove(&mut self, slot: u32) -> Option<T> {
        let entry = self.entries.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.live -= 1;
        Some(entry)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots of every live entry.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_some())
            .map(|(i, _)| i as u32)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_get_new_generations() {
        let mut t: Slots<&str> = Slots::default();
        let (a, gen_a) = t.insert(|_| "a");
        assert_eq!(t.remove(a), Some("a"));
        let (b, gen_b) = t.insert(|_| "b");
        assert_eq!(a, b, "slot reused");
        assert_ne!(gen_a, gen_b);
        assert!(
            t.get_mut(a, gen_a).is_none(),
            "stale generation must not match"
        );
        assert_eq!(t.get_mut(b, gen_b), Some(&mut "b"));
        assert_eq!(t.slot_mut(b), Some(&mut "b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_builder_sees_the_generation_it_is_stored_under() {
        let mut t: Slots<u32> = Slots::default();
        let (slot, generation) = t.insert(|g| g);
        assert_eq!(t.get_mut(slot, generation), Some(&mut generation.clone()));
    }

    #[test]
    fn removed_and_unknown_slots_are_absent() {
        let mut t: Slots<u8> = Slots::default();
        assert!(t.remove(3).is_none());
        assert!(t.get_mut(0, 1).is_none());
        let (s, g) = t.insert(|_| 7);
        t.remove(s);
        assert!(t.get_mut(s, g).is_none());
        assert!(t.remove(s).is_none());
        assert!(t.is_empty());
        assert_eq!(t.slots().count(), 0);
    }
}

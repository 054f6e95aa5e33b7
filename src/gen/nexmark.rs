//! The Nexmark benchmark's events — persons, auctions and bids in a 1:3:46 mix — following
//! Apache Beam's `NexmarkGenerator` (and nexmark/nexmark's Flink port): event ids decide the
//! kind, hot auctions, bidders and sellers, Beam's `nextPrice`, and the event-time model with
//! a rate and out-of-order groups. Each event's randomness is seeded by (seed, event id), so
//! any event can be generated on its own and the same seed always gives the same stream.
//! Depends only on `gen::rng`; JSON rendering lives in `nexmark_json`.

use super::rng::Rng;

pub const FIRST_PERSON_ID: u64 = 1000;
pub const FIRST_AUCTION_ID: u64 = 1000;
pub const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const HOT_AUCTION_RATIO: u64 = 100;
const HOT_BIDDER_RATIO: u64 = 100;
const HOT_SELLER_RATIO: u64 = 100;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_CHANNELS_RATIO: u64 = 2;
const CHANNELS_NUMBER: u64 = 10_000;

const FIRST_NAMES: [&str; 11] = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
const US_CITIES: [&str; 10] =
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// Generator settings (Beam's `GeneratorConfig` / `NexmarkConfiguration` defaults).
#[derive(Debug, Clone)]
pub struct NexmarkSpec {
    pub events: u64,
    pub seed: u64,
    /// Event time of the first event, milliseconds since the epoch.
    pub base_time_ms: i64,
    /// Events per second of event time.
    pub rate: u64,
    /// Events are shuffled within groups of this many (1: in order).
    pub out_of_order_group: u64,
    pub person_proportion: u64,
    pub auction_proportion: u64,
    pub bid_proportion: u64,
    pub num_active_people: u64,
    pub num_in_flight_auctions: u64,
    /// 1 in `hot_auction_ratio` bids goes to a random auction, the rest to a hot one.
    pub hot_auction_ratio: u64,
    pub hot_bidders_ratio: u64,
    pub hot_sellers_ratio: u64,
    pub avg_person_bytes: usize,
    pub avg_auction_bytes: usize,
    pub avg_bid_bytes: usize,
}

impl Default for NexmarkSpec {
    fn default() -> Self {
        NexmarkSpec {
            events: 100_000,
            seed: 42,
            base_time_ms: 1_436_918_400_000, // 2015-07-15T00:00:00Z, as nexmark/nexmark
            rate: 10_000,
            out_of_order_group: 1,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            num_active_people: 1000,
            num_in_flight_auctions: 100,
            hot_auction_ratio: 2,
            hot_bidders_ratio: 4,
            hot_sellers_ratio: 4,
            avg_person_bytes: 200,
            avg_auction_bytes: 500,
            avg_bid_bytes: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub email_address: String,
    pub credit_card: String,
    pub city: &'static str,
    pub state: &'static str,
    pub date_time: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auction {
    pub id: u64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: u64,
    pub reserve: u64,
    pub date_time: i64,
    pub expires: i64,
    pub seller: u64,
    pub category: u64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub channel: String,
    pub url: String,
    pub date_time: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Person(Person),
    Auction(Auction),
    Bid(Bid),
}

impl Event {
    /// `person`, `auction` or `bid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Person(_) => "person",
            Event::Auction(_) => "auction",
            Event::Bid(_) => "bid",
        }
    }

    /// Event time, milliseconds.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }
}

impl NexmarkSpec {
    fn total(&self) -> u64 {
        (self.person_proportion + self.auction_proportion + self.bid_proportion).max(1)
    }

    /// Microseconds of event time between consecutive events.
    fn inter_event_delay_us(&self) -> f64 {
        1_000_000.0 / self.rate.max(1) as f64
    }

    /// Beam's `nextAdjustedEventNumber`: the n-th emitted event is this event number.
    pub fn adjusted_event_number(&self, n: u64) -> u64 {
        let g = self.out_of_order_group.max(1);
        let base = (n / g) * g;
        base + n.wrapping_mul(953) % g
    }

    /// Event time of event number `n`, milliseconds.
    pub fn timestamp_ms(&self, n: u64) -> i64 {
        self.base_time_ms + (n as f64 * self.inter_event_delay_us() / 1000.0) as i64
    }

    /// The id of the last person created at or before event `id` (0-based).
    pub fn last_base0_person_id(&self, id: u64) -> u64 {
        let epoch = id / self.total();
        let offset = (id % self.total()).min(self.person_proportion.saturating_sub(1));
        epoch * self.person_proportion + offset
    }

    /// The id of the last auction created at or before event `id` (0-based).
    pub fn last_base0_auction_id(&self, id: u64) -> u64 {
        let mut epoch = id / self.total();
        let mut offset = id % self.total();
        if offset < self.person_proportion {
            epoch = epoch.saturating_sub(1);
            offset = self.auction_proportion - 1;
        } else if offset >= self.person_proportion + self.auction_proportion {
            offset = self.auction_proportion - 1;
        } else {
            offset -= self.person_proportion;
        }
        epoch * self.auction_proportion + offset
    }

    fn next_base0_person_id(&self, id: u64, rng: &mut Rng) -> u64 {
        let num_people = self.last_base0_person_id(id) + 1;
        let active = num_people.min(self.num_active_people);
        num_people - active + rng.below(active + PERSON_ID_LEAD)
    }

    fn next_base0_auction_id(&self, id: u64, rng: &mut Rng) -> u64 {
        let max = self.last_base0_auction_id(id);
        let min = max.saturating_sub(self.num_in_flight_auctions);
        min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
    }

    /// The `n`-th emitted event (0-based).
    pub fn event(&self, n: u64) -> Event {
        let number = self.adjusted_event_number(n);
        let id = number;
        let ts = self.timestamp_ms(number);
        let mut rng = Rng::new(self.seed ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let rem = id % self.total();
        if rem < self.person_proportion {
            Event::Person(self.person(id, ts, &mut rng))
        } else if rem < self.person_proportion + self.auction_proportion {
            Event::Auction(self.auction(id, number, ts, &mut rng))
        } else {
            Event::Bid(self.bid(id, ts, &mut rng))
        }
    }

    /// All events in emission order.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        (0..self.events).map(|n| self.event(n))
    }

    fn person(&self, id: u64, ts: i64, rng: &mut Rng) -> Person {
        let name = format!("{} {}", pick(&FIRST_NAMES, rng), pick(&LAST_NAMES, rng));
        let email_address = format!("{}@{}.com", next_string(rng, 7), next_string(rng, 5));
        let credit_card = (0..4).map(|_| format!("{:04}", rng.below(10_000))).collect::<Vec<_>>().join(" ");
        let city = pick(&US_CITIES, rng);
        let state = pick(&US_STATES, rng);
        let size = 6 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        Person {
            id: self.last_base0_person_id(id) + FIRST_PERSON_ID,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: ts,
            extra: next_extra(rng, size, self.avg_person_bytes),
        }
    }

    fn auction(&self, id: u64, number: u64, ts: i64, rng: &mut Rng) -> Auction {
        let seller = if rng.below(self.hot_sellers_ratio.max(1)) > 0 {
            (self.last_base0_person_id(id) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            self.next_base0_person_id(id, rng)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
        let initial_bid = next_price(rng);
        // Beam's nextAuctionLengthMs: up to twice the time until the in-flight auctions turn over.
        let events_for_auctions = self.num_in_flight_auctions * self.total() / self.auction_proportion.max(1);
        let horizon = (self.timestamp_ms(number + events_for_auctions) - ts).max(0) as u64;
        let expires = ts + 1 + rng.below((horizon * 2).max(1)) as i64;
        let item_name = next_string(rng, 20);
        let description = next_string(rng, 100);
        let reserve = initial_bid + next_price(rng);
        let size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        Auction {
            id: self.last_base0_auction_id(id) + FIRST_AUCTION_ID,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: ts,
            expires,
            seller,
            category,
            extra: next_extra(rng, size, self.avg_auction_bytes),
        }
    }

    fn bid(&self, id: u64, ts: i64, rng: &mut Rng) -> Bid {
        let auction = if rng.below(self.hot_auction_ratio.max(1)) > 0 {
            (self.last_base0_auction_id(id) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            self.next_base0_auction_id(id, rng)
        } + FIRST_AUCTION_ID;
        let bidder = if rng.below(self.hot_bidders_ratio.max(1)) > 0 {
            (self.last_base0_person_id(id) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            self.next_base0_person_id(id, rng)
        } + FIRST_PERSON_ID;
        let price = next_price(rng);
        let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            (HOT_CHANNELS[i].to_string(), format!("https://www.nexmark.com/{}/item.htm?query=1", HOT_CHANNELS[i].to_lowercase()))
        } else {
            let c = rng.below(CHANNELS_NUMBER);
            (
                format!("channel-{c}"),
                format!("https://www.nexmark.com/{}/{}/item.htm?query=1&channel_id={c}", next_string(rng, 5), next_string(rng, 5)),
            )
        };
        let size = 8 + 8 + 8 + 8 + channel.len() + url.len();
        Bid { auction, bidder, price, channel, url, date_time: ts, extra: next_extra(rng, size, self.avg_bid_bytes) }
    }
}

/// Beam's `PriceGenerator.nextPrice`: log-uniform between 1 and 1,000,000 (in cents).
pub fn next_price(rng: &mut Rng) -> u64 {
    (10f64.powf(rng.f64() * 6.0) * 100.0).round() as u64
}

fn pick(xs: &[&'static str], rng: &mut Rng) -> &'static str {
    xs[rng.below(xs.len() as u64) as usize]
}

/// Beam's `nextString`: lowercase letters with an occasional space, `max_len` at most.
fn next_string(rng: &mut Rng, max_len: usize) -> String {
    let len = 3 + rng.below(max_len.saturating_sub(3).max(1) as u64) as usize;
    exact_string(rng, len)
}

fn exact_string(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| {
            let r = rng.below(27);
            if r == 26 {
                ' '
            } else {
                char::from(b'a' + r as u8)
            }
        })
        .collect()
}

/// Beam's `nextExtra`: pads a record to about `avg` bytes (within ±20%).
fn next_extra(rng: &mut Rng, current: usize, avg: usize) -> String {
    if current > avg {
        return String::new();
    }
    let desired = avg - current;
    let delta = (desired as f64 * 0.2).round() as usize;
    let len = desired - delta + rng.below(2 * delta as u64 + 1) as usize;
    exact_string(rng, len)
}

#[cfg(test)]
#[path = "nexmark_tests.rs"]
mod tests;

use super::*;

fn spec(events: u64) -> NexmarkSpec {
    NexmarkSpec { events, ..NexmarkSpec::default() }
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
    let a: Vec<Event> = spec(500).events().collect();
    let b: Vec<Event> = spec(500).events().collect();
    assert_eq!(a, b);
    let c: Vec<Event> = NexmarkSpec { seed: 43, ..spec(500) }.events().collect();
    assert_ne!(a, c);
    // Any event can be generated on its own.
    assert_eq!(spec(500).event(321), a[321]);
}

#[test]
fn kinds_come_in_a_1_3_46_mix() {
    let mut counts = [0u64; 3];
    for e in spec(50_000).events() {
        counts[match e {
            Event::Person(_) => 0,
            Event::Auction(_) => 1,
            Event::Bid(_) => 2,
        }] += 1;
    }
    assert_eq!(counts, [1_000, 3_000, 46_000]);
}

#[test]
fn person_and_auction_ids_are_dense_and_bids_refer_to_existing_or_leading_ones() {
    let s = spec(5_000);
    let (mut persons, mut auctions) = (Vec::new(), Vec::new());
    for e in s.events() {
        match e {
            Event::Person(p) => persons.push(p.id),
            Event::Auction(a) => {
                assert!(a.seller >= FIRST_PERSON_ID && a.seller <= FIRST_PERSON_ID + persons.len() as u64 + 10);
                assert!((FIRST_CATEGORY_ID..FIRST_CATEGORY_ID + 5).contains(&a.category));
                assert!(a.reserve >= a.initial_bid && a.expires > a.date_time);
                auctions.push(a.id);
            }
            Event::Bid(b) => {
                assert!(b.auction >= FIRST_AUCTION_ID && b.auction <= FIRST_AUCTION_ID + auctions.len() as u64 + 10);
                assert!(b.bidder >= FIRST_PERSON_ID && b.bidder <= FIRST_PERSON_ID + persons.len() as u64 + 10);
            }
        }
    }
    let expected_persons: Vec<u64> = (0..100).map(|i| FIRST_PERSON_ID + i).collect();
    assert_eq!(persons, expected_persons);
    let expected_auctions: Vec<u64> = (0..300).map(|i| FIRST_AUCTION_ID + i).collect();
    assert_eq!(auctions, expected_auctions);
}

#[test]
fn hot_auctions_get_about_half_the_bids() {
    let s = spec(50_000);
    let mut hot = 0u64;
    let mut bids = 0u64;
    for e in s.events() {
        if let Event::Bid(b) = e {
            bids += 1;
            hot += u64::from((b.auction - FIRST_AUCTION_ID).is_multiple_of(100));
        }
    }
    // 1 in 2 bids goes to a hot auction (plus the random ones that hit a multiple of 100).
    assert!(hot * 100 / bids >= 48 && hot * 100 / bids <= 55, "{hot} of {bids}");
}

#[test]
fn prices_are_log_uniform_between_one_and_a_million_dollars() {
    let mut rng = crate::gen::rng::Rng::new(9);
    let prices: Vec<u64> = (0..60_000).map(|_| next_price(&mut rng)).collect();
    assert!(prices.iter().all(|&p| (100..=100_000_000).contains(&p)));
    // Each decade holds about a sixth of the prices.
    for d in 0..6u32 {
        let (lo, hi) = (100 * 10u64.pow(d), 100 * 10u64.pow(d + 1));
        let n = prices.iter().filter(|&&p| p >= lo && p < hi).count();
        assert!((9_000..11_000).contains(&n), "decade {d}: {n}");
    }
}

#[test]
fn event_time_follows_the_rate_and_out_of_order_groups_stay_within_their_group() {
    let s = NexmarkSpec { rate: 1_000, ..spec(100) };
    let times: Vec<i64> = s.events().map(|e| e.date_time()).collect();
    assert_eq!(times[0], s.base_time_ms);
    assert_eq!(times[99], s.base_time_ms + 99);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let shuffled = NexmarkSpec { rate: 1_000, out_of_order_group: 10, ..spec(100) };
    let times: Vec<i64> = shuffled.events().map(|e| e.date_time()).collect();
    assert!(times.windows(2).any(|w| w[0] > w[1]), "some events are out of order");
    for (g, chunk) in times.chunks(10).enumerate() {
        let mut sorted = chunk.to_vec();
        sorted.sort_unstable();
        let expected: Vec<i64> = (0..10).map(|i| s.base_time_ms + (g * 10 + i) as i64).collect();
        assert_eq!(sorted, expected, "group {g} is a permutation of its own times");
    }
}

#[test]
fn json_has_nexmark_field_names_and_parses() {
    let mut line = String::new();
    for e in spec(60).events() {
        line.clear();
        super::super::nexmark_json::write_json(&e, true, &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], e.kind());
        assert_eq!(v["dateTime"], e.date_time());
        match e {
            Event::Bid(b) => assert_eq!(v["price"], b.price),
            Event::Auction(a) => assert_eq!(v["itemName"], a.item_name.as_str()),
            Event::Person(p) => assert_eq!(v["emailAddress"], p.email_address.as_str()),
        }
    }
}

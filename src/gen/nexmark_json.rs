//! Nexmark events as flat JSON objects with nexmark/nexmark's field names (`dateTime` as epoch
//! milliseconds), and `eddy gen nexmark`'s output: one topic per event kind, one NDJSON file
//! per kind in a directory, or everything on stdout with a `type` field.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use super::nexmark::{Event, NexmarkSpec};
use super::{Destination, Output, ProgressBar, TargetArgs};

/// The event kinds, in the order of files and topics.
pub const KINDS: [&str; 3] = ["person", "auction", "bid"];

/// Appends `e` as one JSON object; `with_type` adds `"type":"bid"` (etc.) first.
pub fn write_json(e: &Event, with_type: bool, out: &mut String) {
    out.push('{');
    if with_type {
        let _ = write!(out, "\"type\":\"{}\",", e.kind());
    }
    // Generated strings are letters, digits, spaces and URL punctuation: nothing to escape.
    let _ = match e {
        Event::Person(p) => write!(
            out,
            "\"id\":{},\"name\":\"{}\",\"emailAddress\":\"{}\",\"creditCard\":\"{}\",\"city\":\"{}\",\"state\":\"{}\",\"dateTime\":{},\"extra\":\"{}\"",
            p.id, p.name, p.email_address, p.credit_card, p.city, p.state, p.date_time, p.extra
        ),
        Event::Auction(a) => write!(
            out,
            "\"id\":{},\"itemName\":\"{}\",\"description\":\"{}\",\"initialBid\":{},\"reserve\":{},\"dateTime\":{},\"expires\":{},\"seller\":{},\"category\":{},\"extra\":\"{}\"",
            a.id, a.item_name, a.description, a.initial_bid, a.reserve, a.date_time, a.expires, a.seller, a.category, a.extra
        ),
        Event::Bid(b) => write!(
            out,
            "\"auction\":{},\"bidder\":{},\"price\":{},\"channel\":\"{}\",\"url\":\"{}\",\"dateTime\":{},\"extra\":\"{}\"",
            b.auction, b.bidder, b.price, b.channel, b.url, b.date_time, b.extra
        ),
    };
    out.push('}');
}

/// Kafka key of an event: the person id, the auction's seller (so persons and auctions are
/// co-partitioned for the q3 and q8 joins), or the bid's auction.
pub fn key(e: &Event) -> u64 {
    match e {
        Event::Person(p) => p.id,
        Event::Auction(a) => a.seller,
        Event::Bid(b) => b.auction,
    }
}

/// `eddy gen nexmark`
#[derive(clap::Args)]
pub struct NexmarkArgs {
    /// With --topic T: produce to T-person, T-auction and T-bid. Without --topic or --dir:
    /// print every event to stdout with a "type" field.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write person.json, auction.json and bid.json (NDJSON) into this directory instead.
    #[arg(long, conflicts_with = "topic")]
    pub dir: Option<PathBuf>,
    /// Number of events (all kinds together).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Random seed; the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Events per second of event time.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Shuffle event times within groups of this many events (1: in order).
    #[arg(long, default_value_t = 1)]
    pub out_of_order_group: u64,
    /// Only this kind (person, auction or bid).
    #[arg(long)]
    pub only: Option<String>,
}

/// Runs `eddy gen nexmark`.
pub fn run(a: &NexmarkArgs) -> anyhow::Result<()> {
    if let Some(k) = &a.only {
        if !KINDS.contains(&k.as_str()) {
            anyhow::bail!("--only must be person, auction or bid, not {k}");
        }
    }
    let spec =
        NexmarkSpec { events: a.events, seed: a.seed, rate: a.rate, out_of_order_group: a.out_of_order_group, ..NexmarkSpec::default() };
    let wanted = |e: &Event| a.only.as_deref().is_none_or(|k| k == e.kind());
    let mut bar = ProgressBar::new("gen", spec.events, a.target.topic.is_some() || a.dir.is_some());
    let mut line = String::with_capacity(640);
    if let Some(dir) = &a.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = Vec::new();
        for k in KINDS {
            let path = dir.join(format!("{k}.json"));
            let f = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            files.push(std::io::BufWriter::with_capacity(1 << 16, f));
        }
        for (i, e) in spec.events().enumerate() {
            if wanted(&e) {
                line.clear();
                write_json(&e, false, &mut line);
                line.push('\n');
                let slot = KINDS.iter().position(|k| *k == e.kind()).unwrap_or(0);
                files[slot].write_all(line.as_bytes())?;
            }
            bar.set(i as u64 + 1);
        }
        for mut f in files {
            f.flush()?;
        }
        bar.done();
        return Ok(());
    }
    let mut outs = Vec::new();
    match &a.target.topic {
        Some(t) => {
            for k in KINDS {
                let mut target = a.target.clone();
                target.topic = Some(format!("{t}-{k}"));
                outs.push(Output::open(&Destination::from_args(&target))?);
            }
        }
        None => outs.push(Output::open(&Destination::Stdout)?),
    }
    let with_type = outs.len() == 1;
    let mut key_text = String::new();
    for (i, e) in spec.events().enumerate() {
        if wanted(&e) {
            line.clear();
            write_json(&e, with_type, &mut line);
            key_text.clear();
            let _ = write!(key_text, "{}", key(&e));
            let slot = if with_type { 0 } else { KINDS.iter().position(|k| *k == e.kind()).unwrap_or(0) };
            outs[slot].send(Some(key_text.as_bytes()), line.as_bytes(), Some(e.date_time()))?;
        }
        bar.set(i as u64 + 1);
    }
    bar.done();
    for o in outs {
        o.finish()?;
    }
    Ok(())
}

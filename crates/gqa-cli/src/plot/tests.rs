//! The plots' SVG read back as XML: escaped text, round ticks, x labels apart; and the PNG.

use super::*;
use xml::reader::{EventReader, XmlEvent};

/// One `<text>` element: its x, font size and content.
#[derive(Debug)]
struct Label {
    x: f64,
    y: f64,
    size: f64,
    text: String,
}

/// Parses the SVG as XML (failing on malformed XML) and returns its `<text>` elements.
fn labels(svg: &str) -> Vec<Label> {
    let mut out = Vec::new();
    let mut open: Option<Label> = None;
    for event in EventReader::from_str(svg) {
        match event.expect("well-formed XML") {
            XmlEvent::StartElement { name, attributes, .. } if name.local_name == "text" => {
                let attr = |key: &str| {
                    attributes.iter().find(|a| a.name.local_name == key).map(|a| a.value.parse::<f64>().unwrap())
                };
                open = Some(Label {
                    x: attr("x").unwrap(),
                    y: attr("y").unwrap(),
                    size: attr("font-size").unwrap(),
                    text: String::new(),
                });
            }
            XmlEvent::Characters(text) => {
                if let Some(label) = open.as_mut() {
                    label.text.push_str(text.trim())
                }
            }
            XmlEvent::EndElement { name } if name.local_name == "text" => out.extend(open.take()),
            _ => {}
        }
    }
    out
}

fn decode_plot(title: &str) -> Plot {
    Plot {
        title: title.into(),
        subtitle: "llvmpipe (LLVM 15.0.7, 256 bits) <Vulkan> & CPU".into(),
        x_title: "keys attended S (log scale)".into(),
        y_title: "time per step (ms, log scale)".into(),
        y_scale: Scale::Log,
        x: vec![512, 2048, 8192, 32768],
        series: vec![
            Series {
                name: "GPU step".into(),
                kind: SeriesKind::Measured,
                y: vec![Some(25.0), Some(30.4), Some(55.7), Some(156.6)],
            },
            Series {
                name: "CPU oracle (f64)".into(),
                kind: SeriesKind::Measured,
                y: vec![Some(23.6), Some(45.6), None, Some(2094.7)],
            },
            Series {
                name: "copy probe".into(),
                kind: SeriesKind::Bound,
                y: vec![Some(0.44), Some(1.8), Some(7.0), Some(28.0)],
            },
        ],
    }
}

fn sweep_plot() -> Plot {
    Plot {
        title: "sweep".into(),
        subtitle: "adapter".into(),
        x_title: "sequence length T = S (tokens, log scale)".into(),
        y_title: "throughput (GFLOP/s)".into(),
        y_scale: Scale::Linear,
        x: vec![64, 128, 256, 512, 1024, 2048],
        series: vec![
            Series {
                name: "GPU".into(),
                kind: SeriesKind::Measured,
                y: [431.4, 500.0, 700.0, 800.0, 850.0, 862.8].map(Some).to_vec(),
            },
            Series { name: "CPU".into(), kind: SeriesKind::Measured, y: vec![Some(3.1); 6] },
        ],
    }
}

/// The labels whose text is exactly one of `texts`.
fn find<'a>(labels: &'a [Label], texts: &[String]) -> Vec<&'a Label> {
    labels.iter().filter(|l| texts.contains(&l.text)).collect()
}

#[test]
fn svg_is_well_formed_xml_with_its_text_escaped() {
    let title = "S <= 4096 & T > 1: \"a\" 'b'";
    let svg = decode_plot(title).to_svg().unwrap();
    assert!(svg.contains("S &lt;= 4096 &amp; T &gt; 1"), "{svg}");
    let labels = labels(&svg);
    let texts: Vec<&str> = labels.iter().map(|l| l.text.as_str()).collect();
    for wanted in [
        title,
        "llvmpipe (LLVM 15.0.7, 256 bits) <Vulkan> & CPU",
        "keys attended S (log scale)",
        "time per step (ms, log scale)",
        "GPU step",
        "CPU oracle (f64)",
        "copy probe",
    ] {
        assert!(texts.contains(&wanted), "{wanted:?} not in {texts:?}");
    }
}

#[test]
fn every_x_value_is_labelled_and_no_two_x_labels_overlap() {
    for plot in [decode_plot("decode"), sweep_plot()] {
        let svg = plot.to_svg().unwrap();
        let all = labels(&svg);
        let wanted: Vec<String> = plot.x.iter().map(|x| x.to_string()).collect();
        let mut found = find(&all, &wanted);
        assert_eq!(found.len(), wanted.len(), "{found:?}");
        assert!(found.iter().all(|l| l.y == found[0].y), "x labels on one row: {found:?}");
        found.sort_by(|a, b| a.x.total_cmp(&b.x));
        for pair in found.windows(2) {
            // A sans-serif glyph is under 0.65 em wide on average.
            let half_widths =
                (pair[0].text.len() as f64 * pair[0].size + pair[1].text.len() as f64 * pair[1].size) * 0.65 / 2.0;
            assert!(pair[1].x - pair[0].x > half_widths, "{:?} and {:?} overlap", pair[0], pair[1]);
        }
    }
}

#[test]
fn y_ticks_sit_at_round_values() {
    let linear = labels(&sweep_plot().to_svg().unwrap());
    let ticks: Vec<String> = (0..=12).map(|i| (i * 200).to_string()).collect();
    let found: Vec<&str> = find(&linear, &ticks).iter().map(|l| l.text.as_str()).collect();
    assert_eq!(found, ["0", "200", "400", "600", "800", "1000", "1200"]);
    assert!(!linear.iter().any(|l| l.text.contains("431.4") || l.text.contains("862.8")));

    let log = labels(&decode_plot("decode").to_svg().unwrap());
    let ticks: Vec<String> = ["0.1", "1", "10", "100", "1000", "10000"].map(String::from).to_vec();
    assert_eq!(find(&log, &ticks).len(), 6);
}

#[test]
fn missing_points_are_skipped_and_an_empty_plot_is_an_error() {
    let svg = decode_plot("decode").to_svg().unwrap();
    // 4 GPU points and 3 CPU points get a marker, and each measured series' legend entry; the bound none.
    assert_eq!(svg.matches("<circle").count(), 9);
    let mut empty = decode_plot("decode");
    empty.series.iter_mut().for_each(|s| s.y.iter_mut().for_each(|y| *y = None));
    assert!(matches!(empty.to_svg(), Err(PlotError::Empty)));
    empty.x.clear();
    assert!(matches!(empty.to_svg(), Err(PlotError::Empty)));
}

#[test]
fn png_is_drawn_where_a_font_is_found_and_says_so_where_none_is() {
    match font::ensure_font() {
        Ok(_) => {
            let png = decode_plot("decode").to_png().unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let decoder = png::Decoder::new(std::io::Cursor::new(png));
            let info = decoder.read_info().unwrap();
            assert_eq!((info.info().width, info.info().height), SIZE);
        }
        Err(why) => {
            assert!(why.contains(font::FONT_ENV));
            assert!(matches!(decode_plot("decode").to_png(), Err(PlotError::NoFont(_))));
        }
    }
}

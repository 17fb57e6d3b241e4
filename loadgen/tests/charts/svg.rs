//! Reading a chart back from its SVG, for tests/charts.rs: what any chart
//! shows ([`read`]: its frame, legend, ticks, axis titles, whiskers) and the
//! shapes that stand for figures ([`Shapes`]: markers filled or hollow, line
//! vertices, bars, the ✗ of a failed cell, texts), in the terms plotters
//! writes them.

#[derive(Debug)]
pub struct Label {
    pub text: String,
    pub x: f64,
    pub y: f64,
    pub rotated: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }

    pub fn holds(&self, x: f64, y: f64) -> bool {
        x >= self.x && x <= self.x + self.w && y >= self.y && y <= self.y + self.h
    }
}

/// What a chart shows, as read back from its SVG.
#[derive(Debug)]
pub struct Read {
    pub size: (f64, f64),
    pub frame: Rect,
    pub legend: Option<Rect>,
    pub x_ticks: Vec<String>,
    pub y_ticks: Vec<String>,
    /// Axis titles: the horizontal one first, then the rotated one (none
    /// for a category axis).
    pub titles: Vec<String>,
    pub legend_entries: Vec<String>,
    pub whiskers: usize,
}

pub fn num(n: roxmltree::Node, attr: &str) -> f64 {
    n.attribute(attr)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{attr} of {n:?}"))
}

pub fn read(file: &str, svg: &str) -> Read {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{file}: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{file}");
    let size = (num(root, "width"), num(root, "height"));
    let rect = |n| Rect {
        x: num(n, "x"),
        y: num(n, "y"),
        w: num(n, "width"),
        h: num(n, "height"),
    };
    // Outlined rectangles: the frame around the plot (the largest) and
    // the legend's box.
    let mut boxes: Vec<Rect> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("none"))
        .map(rect)
        .collect();
    boxes.sort_by(|a, b| (b.w * b.h).total_cmp(&(a.w * a.h)));
    assert!(!boxes.is_empty(), "{file}: no frame around the plot");
    let frame = boxes.remove(0);
    assert!(
        boxes.len() <= 1,
        "{file}: one legend box at most: {boxes:?}"
    );
    let legend = boxes.first().copied();
    let labels: Vec<Label> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| Label {
            text: n.text().unwrap_or("").trim().to_string(),
            x: num(n, "x"),
            y: num(n, "y"),
            rotated: n.attribute("transform").is_some(),
        })
        .collect();
    let bottom = frame.y + frame.h;
    let in_x = |l: &Label| l.x >= frame.x - 1.0 && l.x <= frame.x + frame.w + 1.0;
    let x_ticks = labels
        .iter()
        .filter(|l| !l.rotated && in_x(l) && l.y > bottom && l.y < bottom + 25.0)
        .map(|l| l.text.clone())
        .collect();
    let mut left: Vec<&Label> = labels
        .iter()
        .filter(|l| !l.rotated && l.x < frame.x && l.y >= frame.y - 10.0 && l.y <= bottom)
        .collect();
    // Top to bottom.
    left.sort_by(|a, b| a.y.total_cmp(&b.y));
    let y_ticks = left.iter().map(|l| l.text.clone()).collect();
    let mut titles: Vec<String> = labels
        .iter()
        .filter(|l| !l.rotated && in_x(l) && l.y >= bottom + 25.0)
        .map(|l| l.text.clone())
        .collect();
    titles.extend(labels.iter().filter(|l| l.rotated).map(|l| l.text.clone()));
    let legend_entries = legend.map_or(Vec::new(), |b| {
        labels
            .iter()
            .filter(|l| b.holds(l.x, l.y))
            .map(|l| l.text.clone())
            .collect()
    });
    // The chart code draws whiskers (their lines and caps, nothing else)
    // at 80% opacity.
    let whiskers = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("opacity") == Some("0.8"))
        .count();
    Read {
        size,
        frame,
        legend,
        x_ticks,
        y_ticks,
        titles,
        legend_entries,
        whiskers,
    }
}
/// Pixel positions on a chart.
pub type Points = Vec<(f64, f64)>;

/// The shapes of a chart that stand for figures, as read from its SVG.
pub struct Shapes<'a> {
    pub doc: roxmltree::Document<'a>,
}

/// A colour as the SVG writes it: "#D62728".
pub fn hex(c: u32) -> String {
    format!("#{c:06X}")
}

pub fn points(n: roxmltree::Node) -> Points {
    let p = n.attribute("points").unwrap_or("");
    (p.split_whitespace())
        .filter_map(|xy| {
            let (x, y) = xy.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

pub fn span(pts: &[(f64, f64)]) -> (f64, f64, f64, f64) {
    let xs = pts.iter().map(|p| p.0);
    let ys = pts.iter().map(|p| p.1);
    (
        xs.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(f64::NEG_INFINITY, f64::max),
    )
}

impl<'a> Shapes<'a> {
    pub fn of(svg: &'a str) -> Shapes<'a> {
        Shapes {
            doc: roxmltree::Document::parse(svg).expect("an SVG"),
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = roxmltree::Node<'_, 'a>> {
        self.doc.descendants()
    }

    /// The centres of the markers in `colour` inside `frame` (the
    /// legend's swatches are outside it): (filled, hollow).
    pub fn markers(&self, colour: &str, frame: &Rect) -> (Points, Points) {
        let (mut filled, mut hollow) = (Vec::new(), Vec::new());
        for n in self.nodes() {
            let fill = n.attribute("fill");
            let stroke = n.attribute("stroke");
            let at = match n.tag_name().name() {
                "circle" if fill == Some(colour) || stroke == Some(colour) => {
                    let at = (num(n, "cx"), num(n, "cy"));
                    if fill == Some(colour) {
                        &mut filled
                    } else {
                        &mut hollow
                    }
                    .push(at);
                    continue;
                }
                "rect" if fill == Some(colour) && num(n, "width") <= 10.0 => {
                    (num(n, "x") + 4.0, num(n, "y") + 4.0)
                }
                "polygon" if fill == Some(colour) => {
                    let (x0, x1, y0, _) = span(&points(n));
                    filled.push(((x0 + x1) / 2.0, y0 + 5.0));
                    continue;
                }
                // An outline: a closed polyline a marker wide, at full
                // opacity (whiskers are at 80%).
                "polyline" if stroke == Some(colour) && n.attribute("opacity") == Some("1") => {
                    let (x0, x1, y0, y1) = span(&points(n));
                    if x1 - x0 > 10.0 || y1 - y0 > 10.0 {
                        continue;
                    }
                    hollow.push(((x0 + x1) / 2.0, (y0 + y1) / 2.0));
                    continue;
                }
                _ => continue,
            };
            filled.push(at);
        }
        let inside = |v: Points| v.into_iter().filter(|p| frame.holds(p.0, p.1)).collect();
        (inside(filled), inside(hollow))
    }

    /// Every vertex of the lines in `colour` (polylines wider than a
    /// marker, at full opacity).
    pub fn line_vertices(&self, colour: &str) -> Points {
        self.nodes()
            .filter(|n| {
                n.has_tag_name("polyline")
                    && n.attribute("stroke") == Some(colour)
                    && n.attribute("opacity") == Some("1")
            })
            .map(points)
            .filter(|p| {
                let (x0, x1, y0, y1) = span(p);
                x1 - x0 > 10.0 || y1 - y0 > 10.0
            })
            .flatten()
            .collect()
    }

    /// The bars in `colour` inside `frame`: (filled, hollow) counts.
    pub fn bars(&self, colour: &str, frame: &Rect) -> (usize, usize) {
        let filled = self
            .nodes()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(colour))
            .filter(|n| frame.holds(num(*n, "x"), num(*n, "y")))
            .count();
        let hollow = self
            .nodes()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(colour))
            .filter(|n| n.attribute("opacity") == Some("1") && points(*n).len() == 5)
            .count();
        (filled, hollow)
    }

    /// The ✗ marks: where, and in which colour.
    pub fn crosses(&self) -> Vec<(f64, f64, String)> {
        self.nodes()
            .filter(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some("✗"))
            .map(|n| {
                (
                    num(n, "x"),
                    num(n, "y"),
                    n.attribute("fill").unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn texts(&self) -> Vec<String> {
        self.nodes()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect()
    }
}

// Self-contained SVG charts (no scripts, no external fonts): line charts
// against thread count and grouped bar charts, linear or log y axis.
// Every series is one <g class="series" data-series="ID"> element; the
// legend is outside those groups.
import Foundation

public enum Palette {
    static let fixed: [String: String] = [
        "swiftmalloc-percpu": "#1f4e9c",
        "swiftmalloc-thread": "#4f9be0",
        "swiftmalloc-arenas": "#14a3a3",
        "swiftmalloc-global": "#8da9c4",
        "glibc": "#444444",
        "jemalloc": "#d62728",
        "mimalloc": "#2ca02c",
        "tcmalloc": "#9467bd",
    ]
    static let extra = ["#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f"]

    public static func color(for id: String, index: Int) -> String {
        fixed[id] ?? extra[index % extra.count]
    }

    /// Dashed lines for SwiftMalloc's front ends other than percpu, so the
    /// four blues stay apart in print.
    static func dash(for id: String) -> String? {
        switch id {
        case "swiftmalloc-thread": return "6 3"
        case "swiftmalloc-arenas": return "2 3"
        case "swiftmalloc-global": return "8 3 2 3"
        default: return nil
        }
    }
}

public struct ChartSeries: Sendable {
    public var id: String
    public var label: String
    /// One value per x (line chart) or per group (bar chart); nil = no data.
    public var values: [Double?]
    /// Same length as values: true where the run failed (drawn as ✕).
    public var failed: [Bool]

    public init(id: String, label: String, values: [Double?], failed: [Bool]? = nil) {
        self.id = id
        self.label = label
        self.values = values
        self.failed = failed ?? Array(repeating: false, count: values.count)
    }
}

public enum ValueFormat: Sendable {
    case plain, bytes, nanoseconds, ratio

    public func format(_ v: Double) -> String {
        switch self {
        case .plain: return Fmt.si(v)
        case .bytes: return Fmt.bytes(v)
        case .nanoseconds: return Fmt.ns(v)
        case .ratio: return Fmt.ratio(v)
        }
    }
}

public struct Chart: Sendable {
    public enum Style: Sendable { case line, bars }

    public var title: String
    public var subtitle: String?
    public var xLabel: String
    public var yLabel: String
    /// Line charts: the x values (thread counts, placed on a log2 scale).
    /// Bar charts: ignored; `groups` name the groups.
    public var xValues: [Double]
    public var groups: [String]
    public var series: [ChartSeries]
    public var style: Style
    public var logY: Bool
    public var yFormat: ValueFormat
    /// Draws a dashed reference line at this y (e.g. 1.0 for relative charts).
    public var referenceY: Double?

    public init(title: String, subtitle: String? = nil, xLabel: String, yLabel: String, xValues: [Double] = [],
                groups: [String] = [], series: [ChartSeries], style: Style, logY: Bool = false,
                yFormat: ValueFormat = .plain, referenceY: Double? = nil) {
        self.title = title
        self.subtitle = subtitle
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xValues = xValues
        self.groups = groups
        self.series = series
        self.style = style
        self.logY = logY
        self.yFormat = yFormat
        self.referenceY = referenceY
    }

    // MARK: layout

    static let width = 820.0
    static let height = 440.0
    static let left = 84.0
    static let right = 190.0
    static let top = 58.0
    /// Bar charts with many or long group names rotate them: more room.
    var rotateGroupLabels: Bool {
        style == .bars && (groups.count > 4 || groups.contains { $0.count > 12 })
    }
    var bottom: Double { rotateGroupLabels ? 110 : 62 }
    var plotW: Double { Self.width - Self.left - Self.right }
    var plotH: Double { Self.height - Self.top - bottom }

    struct YAxis {
        var lo: Double
        var hi: Double
        var log: Bool
        var ticks: [Double]
        func frac(_ v: Double) -> Double {
            if log {
                let l = Foundation.log10(Swift.max(v, lo))
                return (l - Foundation.log10(lo)) / (Foundation.log10(hi) - Foundation.log10(lo))
            }
            return (v - lo) / (hi - lo)
        }
    }

    func yAxis() -> YAxis {
        var vals = series.flatMap { $0.values.compactMap { $0 } }.filter { $0.isFinite }
        if let r = referenceY { vals.append(r) }
        if logY {
            let positive = vals.filter { $0 > 0 }
            let mn = positive.min() ?? 1, mx = positive.max() ?? 10
            var lo = pow(10, floor(log10(mn)))
            var hi = pow(10, ceil(log10(mx)))
            if hi <= lo { hi = lo * 10 }
            if lo <= 0 { lo = 1 }
            var ticks: [Double] = []
            var t = lo
            while t <= hi * 1.0001 { ticks.append(t); t *= 10 }
            return YAxis(lo: lo, hi: hi, log: true, ticks: ticks)
        }
        let mx = max(vals.max() ?? 1, 0)
        var step = Self.niceStep(mx / 5)
        if case .bytes = yFormat {
            // Steps in whole KiB / MiB / GiB, so tick labels read well.
            let unit: Double = mx >= 1024 * 1024 * 1024 ? 1024 * 1024 * 1024 : mx >= 1024 * 1024 ? 1024 * 1024 : mx >= 1024 ? 1024 : 1
            step = max(Self.niceStep(mx / 5 / unit), 1) * unit
        }
        let hi = max(step * ceil(mx / step), step)
        var ticks: [Double] = []
        var t = 0.0
        while t <= hi + step / 2 { ticks.append(t); t += step }
        return YAxis(lo: 0, hi: hi, log: false, ticks: ticks)
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let mag = pow(10, floor(log10(raw)))
        let f = raw / mag
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
        return nice * mag
    }

    // MARK: rendering

    public func svg() -> String {
        var o = ""
        let W = Self.width, H = Self.height, L = Self.left, T = Self.top
        o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(W))\" height=\"\(n(H))\" viewBox=\"0 0 \(n(W)) \(n(H))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        o += "<title>\(esc(title))</title>\n"
        o += "<rect x=\"0\" y=\"0\" width=\"\(n(W))\" height=\"\(n(H))\" fill=\"#ffffff\"/>\n"
        o += "<text x=\"\(n(L))\" y=\"24\" font-size=\"16\" font-weight=\"bold\" fill=\"#222\">\(esc(title))</text>\n"
        if let subtitle {
            o += "<text x=\"\(n(L))\" y=\"42\" font-size=\"11\" fill=\"#666\">\(esc(subtitle))</text>\n"
        }
        let y = yAxis()
        // Grid and y ticks.
        o += "<g class=\"axis y\">\n"
        for t in y.ticks {
            let py = T + plotH * (1 - y.frac(t))
            o += "<line x1=\"\(n(L))\" y1=\"\(n(py))\" x2=\"\(n(L + plotW))\" y2=\"\(n(py))\" stroke=\"#e3e3e3\"/>\n"
            o += "<text x=\"\(n(L - 8))\" y=\"\(n(py + 4))\" text-anchor=\"end\" fill=\"#444\">\(esc(yFormat.format(t)))</text>\n"
        }
        o += "<line x1=\"\(n(L))\" y1=\"\(n(T))\" x2=\"\(n(L))\" y2=\"\(n(T + plotH))\" stroke=\"#888\"/>\n"
        o += "<line x1=\"\(n(L))\" y1=\"\(n(T + plotH))\" x2=\"\(n(L + plotW))\" y2=\"\(n(T + plotH))\" stroke=\"#888\"/>\n"
        o += "<text transform=\"translate(18 \(n(T + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">\(esc(yLabel + (logY ? " (log scale)" : "")))</text>\n"
        o += "</g>\n"
        if let r = referenceY, r >= y.lo, r <= y.hi {
            let py = T + plotH * (1 - y.frac(r))
            o += "<line class=\"reference\" x1=\"\(n(L))\" y1=\"\(n(py))\" x2=\"\(n(L + plotW))\" y2=\"\(n(py))\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n"
        }
        switch style {
        case .line: o += lineBody(y)
        case .bars: o += barBody(y)
        }
        o += legend()
        o += "</svg>\n"
        return o
    }

    private func xPositions() -> [Double] {
        let L = Self.left
        guard xValues.count > 1 else { return xValues.map { _ in L + plotW / 2 } }
        let logs = xValues.map { log2(max($0, 1e-9)) }
        let lo = logs.min()!, hi = logs.max()!
        let pad = 36.0
        return logs.map { hi == lo ? L + plotW / 2 : L + pad + (plotW - 2 * pad) * ($0 - lo) / (hi - lo) }
    }

    private func lineBody(_ y: YAxis) -> String {
        var o = ""
        let T = Self.top
        let xs = xPositions()
        o += "<g class=\"axis x\">\n"
        for (i, x) in xValues.enumerated() {
            o += "<line x1=\"\(n(xs[i]))\" y1=\"\(n(T + plotH))\" x2=\"\(n(xs[i]))\" y2=\"\(n(T + plotH + 5))\" stroke=\"#888\"/>\n"
            o += "<text x=\"\(n(xs[i]))\" y=\"\(n(T + plotH + 20))\" text-anchor=\"middle\" fill=\"#444\">\(esc(Fmt.si(x)))</text>\n"
        }
        o += "<text x=\"\(n(Self.left + plotW / 2))\" y=\"\(n(Self.height - 16))\" text-anchor=\"middle\" fill=\"#222\">\(esc(xLabel))</text>\n"
        o += "</g>\n"
        for (si, s) in series.enumerated() {
            let color = Palette.color(for: s.id, index: si)
            o += "<g class=\"series\" data-series=\"\(esc(s.id))\">\n"
            // Line segments between consecutive present points.
            var segment: [(Double, Double)] = []
            var paths: [[(Double, Double)]] = []
            for (i, v) in s.values.enumerated() where i < xs.count {
                if let v, v.isFinite, !(logY && v <= 0) {
                    segment.append((xs[i], T + plotH * (1 - y.frac(v))))
                } else {
                    if !segment.isEmpty { paths.append(segment) }
                    segment = []
                }
            }
            if !segment.isEmpty { paths.append(segment) }
            for p in paths where p.count > 1 {
                let d = p.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(n($0.element.0)) \(n($0.element.1))" }.joined(separator: " ")
                let dash = Palette.dash(for: s.id).map { " stroke-dasharray=\"\($0)\"" } ?? ""
                o += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            }
            for (i, v) in s.values.enumerated() where i < xs.count {
                if let v, v.isFinite, !(logY && v <= 0) {
                    let py = T + plotH * (1 - y.frac(v))
                    o += "<circle cx=\"\(n(xs[i]))\" cy=\"\(n(py))\" r=\"3.5\" fill=\"\(color)\"><title>\(esc("\(s.label), \(Fmt.si(xValues[i])) threads: \(yFormat.format(v))"))</title></circle>\n"
                } else if i < s.failed.count, s.failed[i] {
                    o += failMark(x: xs[i], y: T + plotH - 10 - Double(si) * 2, label: "\(s.label), \(Fmt.si(xValues[i])) threads: failed", color: color)
                }
            }
            o += "</g>\n"
        }
        return o
    }

    private func barBody(_ y: YAxis) -> String {
        var o = ""
        let T = Self.top, L = Self.left
        let groupCount = max(groups.count, 1)
        let groupW = plotW / Double(groupCount)
        let barW = max(2, min(22, (groupW - 12) / Double(max(series.count, 1))))
        o += "<g class=\"axis x\">\n"
        for (g, name) in groups.enumerated() {
            let cx = L + groupW * (Double(g) + 0.5)
            if rotateGroupLabels {
                o += "<text transform=\"translate(\(n(cx + 4)) \(n(T + plotH + 14))) rotate(-35)\" text-anchor=\"end\" fill=\"#444\">\(esc(name))</text>\n"
            } else {
                o += "<text x=\"\(n(cx))\" y=\"\(n(T + plotH + 18))\" text-anchor=\"middle\" fill=\"#444\">\(esc(name))</text>\n"
            }
        }
        o += "<text x=\"\(n(L + plotW / 2))\" y=\"\(n(Self.height - 10))\" text-anchor=\"middle\" fill=\"#222\">\(esc(xLabel))</text>\n"
        o += "</g>\n"
        let baseY = T + plotH
        for (si, s) in series.enumerated() {
            let color = Palette.color(for: s.id, index: si)
            o += "<g class=\"series\" data-series=\"\(esc(s.id))\">\n"
            for g in 0..<groups.count {
                let x0 = L + groupW * Double(g) + (groupW - barW * Double(series.count)) / 2 + barW * Double(si)
                let v = g < s.values.count ? s.values[g] : nil
                if let v, v.isFinite, !(logY && v <= 0) {
                    let top = T + plotH * (1 - y.frac(v))
                    o += "<rect x=\"\(n(x0))\" y=\"\(n(top))\" width=\"\(n(barW - 1))\" height=\"\(n(max(baseY - top, 0.5)))\" fill=\"\(color)\"><title>\(esc("\(s.label), \(groups[g]): \(yFormat.format(v))"))</title></rect>\n"
                } else if g < s.failed.count, s.failed[g] {
                    o += failMark(x: x0 + barW / 2, y: baseY - 8, label: "\(s.label), \(groups[g]): failed", color: color)
                }
            }
            o += "</g>\n"
        }
        return o
    }

    private func failMark(x: Double, y: Double, label: String, color: String) -> String {
        "<text x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\" fill=\"#c00000\"><title>\(esc(label))</title>✕</text>\n"
    }

    private func legend() -> String {
        var o = "<g class=\"legend\">\n"
        let x = Self.width - Self.right + 16
        var y = Self.top + 4
        for (si, s) in series.enumerated() {
            let color = Palette.color(for: s.id, index: si)
            let dash = Palette.dash(for: s.id).map { " stroke-dasharray=\"\($0)\"" } ?? ""
            if style == .line {
                o += "<line x1=\"\(n(x))\" y1=\"\(n(y))\" x2=\"\(n(x + 22))\" y2=\"\(n(y))\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash)/>\n"
            } else {
                o += "<rect x=\"\(n(x + 4))\" y=\"\(n(y - 6))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>\n"
            }
            o += "<text x=\"\(n(x + 28))\" y=\"\(n(y + 4))\" fill=\"#222\">\(esc(s.label))</text>\n"
            y += 20
        }
        if series.contains(where: { $0.failed.contains(true) }) {
            o += "<text x=\"\(n(x + 4))\" y=\"\(n(y + 6))\" fill=\"#c00000\" font-weight=\"bold\">✕</text><text x=\"\(n(x + 28))\" y=\"\(n(y + 6))\" fill=\"#222\">failed run</text>\n"
        }
        o += "</g>\n"
        return o
    }

    private func n(_ d: Double) -> String { String(format: "%.1f", d) }
}

/// XML text escaping.
func esc(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(c)
        }
    }
    return out
}

/// Number formatting for tables and axes.
public enum Fmt {
    /// 1234 → "1.23k", 2.5e6 → "2.5M".
    public static func si(_ v: Double) -> String {
        let a = abs(v)
        let (div, suffix): (Double, String) = a >= 1e12 ? (1e12, "T") : a >= 1e9 ? (1e9, "G") : a >= 1e6 ? (1e6, "M") : a >= 1e3 ? (1e3, "k") : (1, "")
        let x = v / div
        return trim(String(format: abs(x) >= 100 ? "%.0f" : abs(x) >= 10 ? "%.1f" : "%.2f", x)) + suffix
    }

    public static func bytes(_ v: Double) -> String {
        let a = abs(v)
        let kib = 1024.0, mib = 1024.0 * 1024, gib = 1024.0 * 1024 * 1024
        if a >= gib { return trim(String(format: "%.2f", v / gib)) + " GiB" }
        if a >= mib { return trim(String(format: a >= 100 * mib ? "%.0f" : "%.1f", v / mib)) + " MiB" }
        if a >= kib { return trim(String(format: "%.0f", v / kib)) + " KiB" }
        return String(format: "%.0f", v) + " B"
    }

    public static func ns(_ v: Double) -> String {
        if v >= 1e9 { return trim(String(format: "%.2f", v / 1e9)) + " s" }
        if v >= 1e6 { return trim(String(format: "%.1f", v / 1e6)) + " ms" }
        if v >= 1e3 { return trim(String(format: "%.1f", v / 1e3)) + " µs" }
        return String(format: "%.0f", v) + " ns"
    }

    public static func ratio(_ v: Double) -> String {
        trim(String(format: v >= 10 ? "%.1f" : "%.2f", v)) + "×"
    }

    public static func seconds(_ v: Double) -> String {
        if v >= 100 { return String(format: "%.0f s", v) }
        if v >= 1 { return String(format: "%.2f s", v) }
        return String(format: "%.1f ms", v * 1000)
    }

    public static func percent(_ v: Double) -> String { String(format: "%.0f%%", v * 100) }

    static func trim(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }
}

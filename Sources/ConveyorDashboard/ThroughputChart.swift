import Conveyor
import Foundation

/// The overview's chart: finished jobs per minute over the last hour as
/// stacked bars (ok, failed, interrupted), drawn server-side as inline SVG.
/// Only numbers and fixed text go into it, so it needs no escaping.
enum ThroughputChart {
    static func svg(_ minutes: [QueueStats.MinuteCounts], width: Int = 720, height: Int = 160) -> String {
        let top = 10
        let bottom = 20
        let left = 36
        let plotHeight = height - top - bottom
        let plotWidth = width - left - 4
        let peak = max(1, minutes.map { $0.ok + $0.failed + $0.interrupted }.max() ?? 1)
        let barWidth = Double(plotWidth) / Double(max(1, minutes.count))
        var parts: [String] = [
            ##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="\##(width)" height="\##(height)" viewBox="0 0 \##(width) \##(height)" role="img" aria-label="finished jobs per minute, last \##(minutes.count) minutes">"##,
            ##"<line x1="\##(left)" y1="\##(top + plotHeight)" x2="\##(width - 4)" y2="\##(top + plotHeight)" stroke="#999"/>"##,
            ##"<text x="\##(left - 4)" y="\##(top + 8)" text-anchor="end" font-size="10">\##(peak)</text>"##,
            ##"<text x="\##(left - 4)" y="\##(top + plotHeight)" text-anchor="end" font-size="10">0</text>"##,
            ##"<text x="\##(left)" y="\##(height - 4)" font-size="10">−\##(minutes.count) min</text>"##,
            ##"<text x="\##(width - 4)" y="\##(height - 4)" text-anchor="end" font-size="10">now</text>"##,
        ]
        for (index, minute) in minutes.enumerated() {
            let x = Double(left) + Double(index) * barWidth + 0.5
            var y = Double(top + plotHeight)
            for (count, color, label) in [(minute.ok, "#3a9a4a", "ok"), (minute.failed, "#c8382c", "failed"), (minute.interrupted, "#d9a520", "interrupted")]
            where count > 0 {
                let barHeight = Double(count) / Double(peak) * Double(plotHeight)
                y -= barHeight
                let title = "\(minute.minute.iso8601Milliseconds): \(count) \(label)"
                parts.append(
                    ##"<rect x="\##(f(x))" y="\##(f(y))" width="\##(f(max(1, barWidth - 1)))" height="\##(f(barHeight))" fill="\##(color)"><title>\##(title)</title></rect>"##
                )
            }
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}

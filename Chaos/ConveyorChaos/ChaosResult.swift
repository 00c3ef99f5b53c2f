/// One row of the chaos table: what a scenario did and what it found.
public struct ChaosResult: Sendable, Hashable {
    /// The scenario's name.
    public var scenario: String
    /// Logical jobs whose scheduling was acknowledged (each `n` once).
    public var jobsScheduled = 0
    /// Faults injected (kills, restarts, freezes, proxy faults, refused schedule episodes).
    public var faults = 0
    /// What the faults were, in words.
    public var faultDetail = ""
    /// Acknowledged jobs whose `n` was never recorded as executed.
    public var neverRan = 0
    /// Logical jobs recorded more than once (at-least-once allows some).
    public var ranMoreThanOnce = 0
    /// Jobs still pending or running in Redis when the run ended.
    public var leftPendingOrRunning = 0
    /// Jobs finished as `worker lost` (read from Redis, or from the history for the archiver row).
    public var workerLost = 0
    /// From the last fault to the last job done; `nil` if nothing ran after the last fault.
    public var recoverySeconds: Double?
    /// Total wall time of the scenario.
    public var durationSeconds = 0.0
    /// The seed of every random choice in the run.
    public var seed: UInt64 = 0
    /// Scenario-specific figures (the error text seen, history duplicates, ...).
    public var notes: [String] = []

    /// A row with only the name set.
    public init(scenario: String) {
        self.scenario = scenario
    }

    /// The Markdown table header matching ``markdownRow``.
    public static let markdownHeader = """
        | scenario | jobs scheduled | faults injected | never ran | ran >1 | left pending/running | worker lost | recovery (s) | run (s) | seed | notes |
        | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
        """

    /// This result as one Markdown table row.
    public var markdownRow: String {
        let recovery = recoverySeconds.map { String(format: "%.1f", $0) } ?? "–"
        let cells = [
            scenario, "\(jobsScheduled)", "\(faults) (\(faultDetail))", "\(neverRan)", "\(ranMoreThanOnce)",
            "\(leftPendingOrRunning)", "\(workerLost)", recovery, String(format: "%.1f", durationSeconds), "\(seed)",
            notes.joined(separator: "; "),
        ]
        return "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
    }
}

import Foundation

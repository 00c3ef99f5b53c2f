import Foundation

/// How big a chaos run is and where its pieces are.
public struct ChaosSettings: Sendable {
    /// ``full`` is the `make chaos` run; ``short`` is what the test suite runs (a few hundred
    /// jobs, one or two faults, well under a minute per scenario).
    public enum Scale: String, Sendable, CaseIterable {
        case full, short
    }

    /// The size of the run.
    public var scale: Scale
    /// Seeds every random choice (job lengths, fault times, victims); printed in each row.
    public var seed: UInt64
    /// The `conveyor` example binary, whose `worker` and `archiver` commands the scenarios run.
    public var conveyorPath: String
    /// Where each scenario makes its own directory (Redis data, logs, the execution log).
    public var workDirectory: String
    /// Keep the scenario directories afterwards (for diagnosis).
    public var keepFiles: Bool

    /// Creates settings; the work directory defaults to a fresh temporary one.
    public init(scale: Scale, seed: UInt64, conveyorPath: String, workDirectory: String? = nil, keepFiles: Bool = false) {
        self.scale = scale
        self.seed = seed
        self.conveyorPath = conveyorPath
        self.workDirectory = workDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-chaos-\(UUID().uuidString.prefix(8))").path
        self.keepFiles = keepFiles
    }

    /// The `conveyor` binary next to `executable` (or up to three directories above it, for a
    /// test bundle), else `.build/debug/conveyor`.
    public static func conveyorNextTo(_ executable: String) -> String {
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("conveyor").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/conveyor"
    }

    /// `full` if the scale is full, else `short`.
    func pick<T>(full: T, short: T) -> T {
        scale == .full ? full : short
    }
}

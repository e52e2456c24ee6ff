import Foundation
import NN
import Optim

/// The model's parameters sorted into groups: `optimizer.groups` give each a learning-rate scale
/// and weight decay on or off (each parameter takes the first group with a pattern matching its
/// name, the rest the defaults), and a task's named groups (`GradientModulating`) have their
/// gradients scaled each step. Groups are runs of the flat arena.
struct ParameterGroups {
    /// Per arena entry: its learning-rate scale and decay.
    private let settings: [(entry: ParameterArena.Entry, lrScale: Double, decay: Bool)]
    /// The task's groups: name → arena ranges.
    let named: [String: [Range<Int>]]

    /// Checks every pattern against the model's parameter names: one that matches nothing is
    /// refused naming its key and listing the names it could have matched.
    init(config: [RunConfig.Optimizer.Group], taskGroups: [String: [String]], arena: ParameterArena, task: String) throws {
        let names = arena.entries.map(\.name)
        func unmatched(_ pattern: String) -> Bool { !names.contains { Self.matches($0, pattern) } }
        let shown = names.prefix(12).joined(separator: ", ") + (names.count > 12 ? ", … (\(names.count))" : "")
        for (index, group) in config.enumerated() {
            if let pattern = group.match.first(where: unmatched) {
                throw TrainingError.plan("optimizer.groups[\(index)].match: '\(pattern)' matches no parameter of \(task); its parameters: \(shown)")
            }
        }
        settings = arena.entries.map { entry in
            let group = config.first { $0.match.contains { Self.matches(entry.name, $0) } }
            return (entry, group?.lrScale ?? 1, group?.weightDecay ?? true)
        }
        named = taskGroups.mapValues { patterns in
            arena.entries.filter { entry in patterns.contains { Self.matches(entry.name, $0) } }.map { $0.offset..<($0.offset + $0.count) }
        }
    }

    /// The optimizer's runs over `elements` of the arena, relative to its start: consecutive
    /// parameters with the same settings make one run.
    func runs(within elements: Range<Int>) -> [UpdateRun] {
        var runs = [UpdateRun]()
        for (entry, scale, decay) in settings {
            let lower = max(entry.offset, elements.lowerBound), upper = min(entry.offset + entry.count, elements.upperBound)
            guard lower < upper else { continue }  // the entry lies outside (another worker's ZeRO-1 partition)
            let relative = (lower - elements.lowerBound)..<(upper - elements.lowerBound)
            if let last = runs.last, last.lrScale == scale, last.decay == decay, last.range.upperBound == relative.lowerBound {
                runs[runs.count - 1].range = last.range.lowerBound..<relative.upperBound
            } else {
                runs.append(UpdateRun(relative, lrScale: scale, decay: decay))
            }
        }
        return runs
    }

    /// Shell-style matching of a parameter name: `*` any run of characters, `?` one.
    static func matches(_ name: String, _ pattern: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}

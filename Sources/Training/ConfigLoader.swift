import Distributed
import Foundation
import Yams

/// A run configuration that is wrong, with where: `file:line`, or the `--set` that said it.
public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The configuration a run trains with: the file merged over the defaults, with `--set`
/// overrides applied, checked key by key.
public struct EffectiveConfig {
    public let config: RunConfig
    /// The task's `model` section (decoded by the task).
    public let model: Node
    /// The whole effective configuration as YAML (stored as `config.yaml`), paths absolute.
    public let yaml: String
}

/// Reads a run config: YAML syntax, unknown keys (with a suggestion), types and ranges — each
/// problem names its key and its line — then the defaults for every key not given.
public enum ConfigLoader {
    /// Loads `file` and applies `overrides` (`key.path=value`, value in YAML syntax).
    ///
    /// Paths (`cohort`, `run_dir`, `train.init_from`, `companions.*`) follow one rule: a relative path is read from where it was
    /// written — a path in the file from the file's folder, a path given on the command line
    /// (`--set`) from the working directory. An unset `run_dir` is `runs/<config name>` in the
    /// working directory. The effective config holds them absolute.
    public static func load(file: URL, overrides: [String] = []) throws(ConfigError) -> EffectiveConfig {
        let text: String
        do { text = try String(contentsOf: file, encoding: .utf8) } catch {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory)
            let why = !exists ? "no such file" : isDirectory.boolValue ? "a directory, not a config file" : "not readable as UTF-8 text (a YAML config is text)"
            throw ConfigError("\(file.path): cannot read the config: \(why)")
        }
        return try load(yaml: text, source: file.path, overrides: overrides, baseDirectory: file.deletingLastPathComponent(),
                        defaultRunDirectory: "runs/" + file.deletingPathExtension().lastPathComponent)
    }

    /// Loads YAML text; `source` names it in messages; relative paths in the text resolve
    /// against `baseDirectory`, those of `overrides` against the working directory; an unset
    /// `run_dir` becomes `defaultRunDirectory` in the working directory, if given.
    public static func load(yaml text: String, source: String, overrides: [String] = [], baseDirectory: URL? = nil,
                            defaultRunDirectory: String? = nil) throws(ConfigError) -> EffectiveConfig {
        var user: Node
        do {
            user = try Yams.compose(yaml: text) ?? Node([(Node, Node)]())
        } catch {
            throw ConfigError("\(source): not valid YAML: \(error)")
        }
        guard user.mapping != nil else { throw ConfigError("\(source): the config must be a mapping of keys (task:, cohort:, train:, …)") }

        let taskName = override(named: "task", in: overrides) ?? user["task"]?.string ?? RunConfig().task
        guard let task = TaskRegistry.task(named: taskName) else {
            throw ConfigError("\(source): task: unknown task '\(taskName)'; known tasks: \(TaskRegistry.names.joined(separator: ", "))")
        }
        let modelDefaults: Node
        do { modelDefaults = try task.defaultModelNode() } catch { throw ConfigError("internal: \(task.name)'s model defaults do not encode: \(error)") }
        let defaults = try defaultTree(modelDefaults: modelDefaults, companions: task.companions.map(\.name))
        try checkKeys(user, against: defaults, path: [], source: source)
        var setBy = [String: String]()  // key path → the --set that gave it
        for assignment in overrides {
            user = try apply(assignment, to: user, defaults: defaults)
            if let equals = assignment.firstIndex(of: "=") { setBy[String(assignment[..<equals])] = assignment }
        }
        if !overrides.isEmpty { try checkKeys(user, against: defaults, path: [], source: "--set") }  // keys inside a value given by --set
        let merged = merge(defaults, user)

        var config: RunConfig
        do {
            config = try YAMLDecoder().decode(RunConfig.self, from: merged)
        } catch {
            let (message, fromFile) = describe(error, in: user, setBy: setBy)
            throw ConfigError(fromFile ? "\(source): \(message)" : message)
        }
        let workingDirectory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        func resolved(_ path: String, key: String) -> String {
            guard !path.isEmpty, !path.hasPrefix("/") else { return path }
            let base = setBy[key] != nil ? workingDirectory : baseDirectory ?? workingDirectory
            return base.appendingPathComponent(path).standardizedFileURL.path
        }
        config.cohort = resolved(config.cohort, key: "cohort")
        config.train.initFrom = resolved(config.train.initFrom, key: "train.init_from")
        config.companions = Dictionary(uniqueKeysWithValues: config.companions.map { ($0, resolved($1, key: "companions.\($0)")) })
        config.runDir = config.runDir.isEmpty
            ? defaultRunDirectory.map { workingDirectory.appendingPathComponent($0).standardizedFileURL.path } ?? ""
            : resolved(config.runDir, key: "run_dir")
        let problems = config.problems()
        guard problems.isEmpty else { throw ConfigError("\(source): " + problems.joined(separator: "\n  ")) }
        let model = merged["model"]!
        do { try task.checkModel(model) } catch {
            var modelSetBy = setBy.reduce(into: [String: String]()) { if $1.key.hasPrefix("model.") { $0[String($1.key.dropFirst(6))] = $1.value } }
            modelSetBy[""] = setBy["model"]  // the whole section
            let (message, fromFile) = describe(error, in: user["model"] ?? model, setBy: modelSetBy)
            throw ConfigError(fromFile ? "\(source): model: \(message)" : "model: \(message)")
        }
        var effective = plainNumbers(merged)
        effective["cohort"] = Node(config.cohort)
        effective["run_dir"] = Node(config.runDir)
        if !config.train.initFrom.isEmpty { effective["train"]?["init_from"] = Node(config.train.initFrom) }
        for (name, path) in config.companions where !path.isEmpty { effective["companions"]?[name] = Node(path) }
        if task.companions.isEmpty, var mapping = effective.mapping {  // a section with no keys says nothing
            mapping["companions"] = nil
            effective = .mapping(mapping)
        }
        let yaml = (try? Yams.serialize(node: effective)) ?? ""
        return EffectiveConfig(config: config, model: model, yaml: yaml)
    }

    /// RunConfig's defaults as a tree, with the task's model defaults after `threads_per_rank`
    /// and its companions' names (unset) under `companions`.
    private static func defaultTree(modelDefaults: Node, companions: [String]) throws(ConfigError) -> Node {
        do {
            let base = try Yams.compose(yaml: try YAMLEncoder().encode(RunConfig()))!
            var pairs = [(Node, Node)]()
            for (key, value) in base.mapping! {
                if key.string == "companions" {
                    pairs.append((key, Node(companions.map { (Node($0), Node("")) })))
                    continue
                }
                pairs.append((key, value))
                if key.string == "threads_per_rank" { pairs.append((Node("model"), modelDefaults)) }
            }
            return Node(pairs)
        } catch {
            throw ConfigError("internal: the default config does not encode: \(error)")
        }
    }

    /// Every key of `user` must exist in `defaults` (recursively through mappings).
    private static func checkKeys(_ user: Node, against defaults: Node, path: [String], source: String) throws(ConfigError) {
        guard let mapping = user.mapping, let known = defaults.mapping else { return }
        for (key, value) in mapping {
            let name = key.string ?? "\(key)"
            let place = key.mark.map { "\(source):\($0.line)" } ?? source
            guard let expected = known[name] else {
                throw ConfigError("\(place): unknown key '\((path + [name]).joined(separator: "."))'\(suggestion(for: name, among: known))")
            }
            if expected.mapping != nil && value.mapping == nil && value != Node("") {
                throw ConfigError("\(place): '\((path + [name]).joined(separator: "."))' must be a mapping with keys \(keyList(expected))")
            }
            if let elements = value.sequence, let template = sequenceElements[(path + [name]).joined(separator: ".")] {
                for (index, element) in elements.enumerated() {
                    let elementPath = path + ["\(name)[\(index)]"]
                    guard element.mapping != nil else {
                        throw ConfigError("\(place): '\(elementPath.joined(separator: "."))' must be a mapping with keys \(keyList(template))")
                    }
                    try checkKeys(element, against: template, path: elementPath, source: source)
                }
            }
            try checkKeys(value, against: expected, path: path + [name], source: source)
        }
    }

    /// The keys an element of a list in the config may have, by the list's key path.
    private static var sequenceElements: [String: Node] {
        guard let group = try? Yams.compose(yaml: try YAMLEncoder().encode(RunConfig.Optimizer.Group())) else { return [:] }
        return ["optimizer.groups": group]
    }

    /// Sets one `key.path=value` in `user`, after checking the path exists.
    private static func apply(_ assignment: String, to user: Node, defaults: Node) throws(ConfigError) -> Node {
        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
            throw ConfigError("--set \(assignment): expected key.path=value, e.g. --set train.steps=200")
        }
        let path = assignment[..<equals].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.contains("") else { throw ConfigError("--set \(assignment): a key path is names joined by single dots, e.g. --set train.steps=200") }
        let text = String(assignment[assignment.index(after: equals)...])
        var expected = defaults
        for (depth, key) in path.enumerated() {
            guard let known = expected.mapping else {
                throw ConfigError("--set \(assignment): '\(path[..<depth].joined(separator: "."))' is not a section")
            }
            guard let next = known[key] else {
                throw ConfigError("--set \(assignment): unknown key '\(path[...depth].joined(separator: "."))'\(suggestion(for: key, among: known))")
            }
            expected = next
        }
        let value: Node
        do { value = try Yams.compose(yaml: text) ?? Node("") } catch {
            throw ConfigError("--set \(assignment): the value is not valid YAML: \(error)")
        }
        if expected.mapping != nil, value.mapping != nil {  // a whole section: its keys are checked too
            try checkKeys(value, against: expected, path: path, source: "--set \(assignment)")
        }
        return setting(value, at: path[...], in: user)
    }

    private static func setting(_ value: Node, at path: ArraySlice<String>, in node: Node) -> Node {
        guard let key = path.first else { return value }
        var mapping = node.mapping ?? Node.Mapping([])
        mapping[key] = setting(value, at: path.dropFirst(), in: mapping[key] ?? Node([(Node, Node)]()))
        return .mapping(mapping)
    }

    /// `user` laid over `defaults`: mappings merge key by key, anything else replaces.
    private static func merge(_ defaults: Node, _ user: Node) -> Node {
        guard var base = defaults.mapping, let over = user.mapping else { return user == Node("") && defaults.mapping != nil ? defaults : user }
        for (key, value) in over {
            let name = key.string ?? ""
            base[name] = base[name].map { merge($0, value) } ?? value
        }
        return .mapping(base)
    }

    /// The tree with numbers as Swift prints them (0.9, 30.0, 1e-08) instead of YAML's encoder
    /// style (9e-1, 3e+1), for the printed config.
    private static func plainNumbers(_ node: Node) -> Node {
        switch node {
        case var .mapping(mapping):
            for key in mapping.keys.compactMap(\.string) { mapping[key] = mapping[key].map(plainNumbers) }
            return .mapping(mapping)
        case let .sequence(sequence):
            return Node(sequence.map(plainNumbers))
        case let .scalar(scalar):
            guard scalar.string.contains("e"), let value = Double(scalar.string) else { return node }
            return Node("\(value)", Tag(.float))
        default:
            return node
        }
    }

    private static func keyList(_ node: Node) -> String {
        (node.mapping?.keys.compactMap(\.string) ?? []).joined(separator: ", ")
    }

    private static func suggestion(for name: String, among known: Node.Mapping) -> String {
        let names = known.keys.compactMap(\.string)
        let close = names.min { editDistance($0, name) < editDistance($1, name) }
        let hint = close.flatMap { editDistance($0, name) <= max(2, name.count / 3) ? " (did you mean '\($0)'?)" : nil } ?? ""
        return "\(hint); known keys here: \(names.joined(separator: ", "))"
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }

    /// A decoding error as "key.path: what was wrong (line N)", or "(from --set key=value)"
    /// when an override gave the value; and whether the file is to blame.
    static func describe(_ error: Error, in user: Node, setBy: [String: String] = [:]) -> (message: String, fromFile: Bool) {
        func value(at keys: [String]) -> Node? { keys.reduce(Optional(user)) { $0?[$1] } }
        var fromFile = true
        func located(_ path: [CodingKey], _ message: String) -> String {
            let keys = path.map(\.stringValue)
            // The --set of this key or of a section above it ("": the whole tree).
            let enclosing = keys.indices.reversed().map { keys[...$0].joined(separator: ".") } + [""]
            if let assignment = enclosing.lazy.compactMap({ setBy[$0] }).first {
                fromFile = false
                return "\(keys.joined(separator: ".")): \(message) (from --set \(assignment))"
            }
            let line = value(at: keys)?.mark.map { " (line \($0.line))" } ?? ""
            return "\(keys.joined(separator: ".")): \(message)\(line)"
        }
        /// What the user wrote at `path`, for the message.
        func given(_ path: [CodingKey]) -> String {
            guard let node = value(at: path.map(\.stringValue)) else { return "nothing" }
            if let text = node.string { return "'\(text)'" }
            return ((try? Yams.serialize(node: node)) ?? "another kind of value").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let message: String
        switch error {
        case let DecodingError.typeMismatch(type, context):
            message = located(context.codingPath, "expected \(typeName(type)), got \(given(context.codingPath))")
        case let DecodingError.dataCorrupted(context):
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            let choices = choices[key].map { "; one of \($0.joined(separator: ", "))" } ?? ""
            message = located(context.codingPath, "\(given(context.codingPath)) is not a valid value\(choices)")
        case let DecodingError.valueNotFound(type, context):
            message = located(context.codingPath, "expected \(typeName(type)), found nothing")
        case let DecodingError.keyNotFound(key, context):
            message = located(context.codingPath + [key], "missing")
        default:
            message = "\(error)"
        }
        return (message, fromFile)
    }

    /// `text` as a YAML string (JSON's quoting is valid YAML), for overrides made here.
    static func quoted(_ text: String) -> String {
        (try? JSONEncoder().encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    /// The values of the keys that take one of a fixed set.
    private static let choices = ["exchange.algorithm": ExchangeAlgorithm.allCases.map(\.rawValue)]

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is [Int].Type: "a list of integers, e.g. [256, 64]"
        case is [String: Any].Type: "a section of keys"
        default: "a value of type \(type)"
        }
    }

    /// The value an override gives `key`, if one does.
    private static func override(named key: String, in overrides: [String]) -> String? {
        overrides.last { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }
}

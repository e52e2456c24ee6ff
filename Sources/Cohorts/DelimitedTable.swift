import Foundation

/// A CSV or TSV file read whole: a header and rows of fields. Lines starting with `#` are
/// comments (the GDC STAR files' `# gene-model` line); CSV fields may be double-quoted.
public struct DelimitedTable {
    public let path: String
    public var header: [String]
    public var rows: [[String]]
    /// The 1-based line of each row in the file.
    public var lineNumbers: [Int]
    /// The 1-based line of the header.
    public var headerLine: Int

    /// Tab-separated unless the file name ends in `.csv`.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CohortError(file: path, "cannot be read (missing or not readable)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CohortError(file: path, "is not UTF-8 text") }
        self.path = path
        let separator: Character = path.lowercased().hasSuffix(".csv") ? "," : "\t"
        var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }.enumerated()
            .filter { !$0.element.isEmpty && !$0.element.hasPrefix("#") }
        guard !lines.isEmpty else { throw CohortError(file: path, "is empty: expected a header line") }
        let first = lines.removeFirst()
        (header, headerLine) = (Self.fields(first.element, separator), first.offset + 1)
        rows = lines.map { Self.fields($0.element, separator) }
        lineNumbers = lines.map { $0.offset + 1 }
    }

    /// The fields of one line. Inside a field quoted by one of `quotes` the separator is text and
    /// a doubled quote is one quote character.
    static func fields(_ line: Substring, _ separator: Character, quotes: Set<Character> = ["\""]) -> [String] {
        let characters = Array(line)
        var fields = [String](), field = "", quote: Character?, i = 0
        while i < characters.count {
            let c = characters[i]
            if let open = quote, c == open {
                if i + 1 < characters.count && characters[i + 1] == open { field.append(open); i += 1 } else { quote = nil }
            } else if quote != nil {
                field.append(c)
            } else if quotes.contains(c) {
                quote = c
            } else if c == separator {
                fields.append(field)
                field = ""
            } else if c != "\r" {
                field.append(c)
            }
            i += 1
        }
        fields.append(field)
        return fields
    }

    /// The index of a header column, or an error naming the columns there are.
    public func column(_ name: String) throws -> Int {
        guard let index = header.firstIndex(of: name) else {
            throw CohortError(file: path, "has no column \"\(name)\" (columns: \(header.prefix(12).joined(separator: ", "))\(header.count > 12 ? ", …" : ""))")
        }
        return index
    }

    /// "path:line" of a row, for error messages.
    public func place(_ row: Int) -> String { "\(path):\(lineNumbers[row])" }

    /// Throws, naming the line, unless row `row` has as many fields as the header.
    public func checkWidth(_ row: Int) throws {
        guard rows[row].count == header.count else {
            throw CohortError(file: place(row), "has \(rows[row].count) fields, the header \(header.count) (a truncated line?)")
        }
    }

    /// A field parsed as a number, or an error naming the file, line and column (1-based, as a
    /// spreadsheet or `cut -f` counts it).
    public func number(_ row: Int, _ column: Int) throws -> Float {
        let field = rows[row].indices.contains(column) ? rows[row][column].trimmingCharacters(in: .whitespaces) : ""
        guard let value = Float(field), value.isFinite else {
            throw CohortError(file: place(row), "column \(column + 1) (\(header.indices.contains(column) ? header[column] : "?")): \"\(field)\" is not a finite number")
        }
        return value
    }
}

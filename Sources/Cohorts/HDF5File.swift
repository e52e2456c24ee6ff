import CHDF5
import Foundation

/// Element types that cohort datasets hold, with their HDF5 memory type.
public protocol HDF5Scalar: Numeric {
    static var hdf5Type: hid_t { get }
    /// The name used in messages and in Docs/DataFormat.md ("float32", "uint8", …).
    static var typeName: String { get }
}

extension Float: HDF5Scalar {
    public static var hdf5Type: hid_t { chdf5_native_float() }
    public static var typeName: String { "float32" }
}
extension Double: HDF5Scalar {
    public static var hdf5Type: hid_t { chdf5_native_double() }
    public static var typeName: String { "float64" }
}
extension Int32: HDF5Scalar {
    public static var hdf5Type: hid_t { chdf5_native_int32() }
    public static var typeName: String { "int32" }
}
extension Int64: HDF5Scalar {
    public static var hdf5Type: hid_t { chdf5_native_int64() }
    public static var typeName: String { "int64" }
}
extension UInt8: HDF5Scalar {
    public static var hdf5Type: hid_t { chdf5_native_uint8() }
    public static var typeName: String { "uint8" }
}

/// What a dataset holds: its shape and stored element type.
public struct DatasetInfo: Equatable, Sendable {
    public var shape: [Int]
    /// "float32", "float64", "int8"…"int64", "uint8"…"uint64", "string", or "other".
    public var typeName: String
    /// The number of elements. `HDF5File` checks, before returning an info, that this product
    /// fits an `Int` and is plausible for the size of the file.
    public var count: Int { shape.reduce(1, *) }

    public init(shape: [Int], typeName: String) { (self.shape, self.typeName) = (shape, typeName) }
}

/// One HDF5 file, read-only (file locking off, as shared file systems need) or freshly created.
/// Every failure is a `CohortError` naming the file and dataset; HDF5's own error stack printing
/// is switched off.
public final class HDF5File {
    public let path: String
    private let id: hid_t

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    /// Datasets kept open by row reads (a random tile read then costs one H5Dread, not a lookup).
    private var keptDatasets: [String: hid_t] = [:]

    deinit {
        keptDatasets.values.forEach { H5Dclose($0) }
        H5Fclose(id)
    }

    /// Creates (or truncates) a file for writing.
    public static func create(_ path: String) throws -> HDF5File {
        silenceErrorStack()
        let id = H5Fcreate(path, chdf5_acc_trunc(), chdf5_p_default(), chdf5_p_default())
        guard id >= 0 else { throw CohortError(file: path, "cannot create an HDF5 file here (check the directory exists and is writable)") }
        return HDF5File(path: path, id: id)
    }

    /// Opens an existing file read-only, without file locking.
    public static func open(_ path: String) throws -> HDF5File {
        silenceErrorStack()
        guard FileManager.default.fileExists(atPath: path) else { throw CohortError(file: path, "file not found") }
        let access = H5Pcreate(chdf5_p_file_access())
        defer { H5Pclose(access) }
        H5Pset_file_locking(access, false, true)
        let id = H5Fopen(path, chdf5_acc_rdonly(), access)
        guard id >= 0 else { throw CohortError(file: path, "not a readable HDF5 file (truncated or corrupt?)") }
        return HDF5File(path: path, id: id)
    }

    /// HDF5 prints its error stack to stderr unless told not to, once per thread (the library
    /// is built thread-safe): every failure becomes a CohortError instead. Threads that read
    /// (the loader's) call it too.
    static func silenceErrorStack() { H5Eset_auto2(0, nil, nil) }

    /// Whether a dataset or group exists at `name` (an absolute path such as "/rna/genes").
    public func exists(_ name: String) -> Bool {
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += "/" + part
            guard H5Lexists(id, prefix, chdf5_p_default()) > 0 else { return false }
        }
        return true
    }

    // MARK: Writing

    /// Writes `values` as a dataset of `shape`, creating parent groups. `chunk` sets the chunk
    /// shape (e.g. one tile per chunk); `deflate` (1–9) compresses chunked data.
    public func write<T: HDF5Scalar>(_ name: String, _ values: [T], shape: [Int], chunk: [Int]? = nil, deflate: Int? = nil) throws {
        // Writers build values and shape together (CohortShard, export, encode): not reachable from input.
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let dataset = try createDataset(name, type: T.hdf5Type, shape: shape, chunk: chunk, deflate: deflate)
        defer { H5Dclose(dataset) }
        let status = values.withUnsafeBytes { H5Dwrite(dataset, T.hdf5Type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        guard status >= 0 else { throw error(name, "write failed (disk full?)") }
    }

    /// Writes variable-length UTF-8 strings as a 1-D dataset.
    public func writeStrings(_ name: String, _ values: [String]) throws {
        let type = Self.stringType()
        defer { H5Tclose(type) }
        let dataset = try createDataset(name, type: type, shape: [values.count], chunk: nil, deflate: nil)
        defer { H5Dclose(dataset) }
        let status = withCStrings(values) { pointers in
            H5Dwrite(dataset, type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), pointers.baseAddress)
        }
        guard status >= 0 else { throw error(name, "write failed (disk full?)") }
    }

    /// Sets a string attribute on a dataset or group.
    public func setAttribute(_ object: String, _ attribute: String, _ value: String) throws {
        try setAttribute(object, attribute, strings: [value], scalar: true)
    }

    /// Sets a 1-D string-array attribute (e.g. the names behind integer codes).
    public func setAttribute(_ object: String, _ attribute: String, strings: [String]) throws {
        try setAttribute(object, attribute, strings: strings, scalar: false)
    }

    private func setAttribute(_ object: String, _ attribute: String, strings: [String], scalar: Bool) throws {
        let target = H5Oopen(id, object, chdf5_p_default())
        guard target >= 0 else { throw error(object, "no such object for attribute \(attribute)") }
        defer { H5Oclose(target) }
        let type = Self.stringType()
        defer { H5Tclose(type) }
        var dims = [hsize_t(strings.count)]
        let space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        if H5Aexists(target, attribute) > 0 { H5Adelete(target, attribute) }
        let handle = H5Acreate2(target, attribute, type, space, chdf5_p_default(), chdf5_p_default())
        guard handle >= 0 else { throw error(object, "cannot create attribute \(attribute)") }
        defer { H5Aclose(handle) }
        let status = withCStrings(strings) { H5Awrite(handle, type, $0.baseAddress) }
        guard status >= 0 else { throw error(object, "cannot write attribute \(attribute)") }
    }

    private func createDataset(_ name: String, type: hid_t, shape: [Int], chunk: [Int]?, deflate: Int?) throws -> hid_t {
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(shape.count), &dims, nil)
        defer { H5Sclose(space) }
        let links = H5Pcreate(chdf5_p_link_create())
        defer { H5Pclose(links) }
        H5Pset_create_intermediate_group(links, 1)
        let creation = H5Pcreate(chdf5_p_dataset_create())
        defer { H5Pclose(creation) }
        if let chunk, shape.allSatisfy({ $0 > 0 }) {
            var chunkDims = zip(chunk, shape).map { hsize_t(max(1, min($0, $1))) }
            H5Pset_chunk(creation, Int32(chunk.count), &chunkDims)
            if let deflate { H5Pset_deflate(creation, UInt32(deflate)) }
        }
        let dataset = H5Dcreate2(id, name, type, space, links, creation, chdf5_p_default())
        guard dataset >= 0 else { throw error(name, "cannot create dataset (does it already exist?)") }
        return dataset
    }

    private static func stringType() -> hid_t {
        let type = H5Tcopy(chdf5_c_s1())
        H5Tset_size(type, chdf5_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        return type
    }

    // MARK: Reading

    /// Shape and stored type of a dataset; throws if it is missing.
    public func info(_ name: String) throws -> DatasetInfo {
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        return try info(of: dataset, name)
    }

    /// The whole dataset, which must be stored as `T` unless `converting` (then any integer or
    /// float type is converted by HDF5, as foreign files such as `.h5ad` need).
    public func read<T: HDF5Scalar>(_ name: String, as _: T.Type = T.self, converting: Bool = false) throws -> [T] {
        try readRows(name, nil, as: T.self, converting: converting)
    }

    /// Rows `rows` along the first axis (all of them when nil), stored as `T` unless `converting`.
    public func readRows<T: HDF5Scalar>(_ name: String, _ rows: Range<Int>?, as _: T.Type = T.self, converting: Bool = false) throws -> [T] {
        let dataset = try openDatasetKept(name)
        let info = try self.info(of: dataset, name)
        let numeric = info.typeName.hasPrefix("int") || info.typeName.hasPrefix("uint") || info.typeName.hasPrefix("float")
        guard info.typeName == T.typeName || (converting && numeric) else {
            throw error(name, "stored as \(info.typeName), expected \(converting ? "numbers" : T.typeName)")
        }
        guard let rows else {
            var values = [T](repeating: .zero, count: info.count)
            try readInto(dataset, name, &values, memorySpace: chdf5_s_all(), fileSpace: chdf5_s_all())
            return values
        }
        guard !info.shape.isEmpty, rows.lowerBound >= 0, rows.upperBound <= info.shape[0] else {
            throw error(name, "rows \(rows) outside a dataset of shape \(info.shape)")
        }
        let rowCount = info.shape.dropFirst().reduce(1, *)
        var values = [T](repeating: .zero, count: rows.count * rowCount)
        guard !rows.isEmpty else { return values }
        let fileSpace = H5Dget_space(dataset)
        defer { H5Sclose(fileSpace) }
        var start = [hsize_t](repeating: 0, count: info.shape.count), count = info.shape.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
        let memorySpace = H5Screate_simple(Int32(count.count), &count, nil)
        defer { H5Sclose(memorySpace) }
        try readInto(dataset, name, &values, memorySpace: memorySpace, fileSpace: fileSpace)
        return values
    }

    private func readInto<T: HDF5Scalar>(_ dataset: hid_t, _ name: String, _ values: inout [T], memorySpace: hid_t, fileSpace: hid_t) throws {
        let status = values.withUnsafeMutableBytes {
            H5Dread(dataset, T.hdf5Type, memorySpace, fileSpace, chdf5_p_default(), $0.baseAddress)
        }
        guard status >= 0 else { throw error(name, "read failed (file truncated or corrupt?)") }
    }

    /// A 1-D string dataset (variable- or fixed-length).
    public func readStrings(_ name: String) throws -> [String] {
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        let info = try self.info(of: dataset, name)
        guard info.typeName == "string" else { throw error(name, "stored as \(info.typeName), expected strings") }
        let stored = H5Dget_type(dataset), space = H5Dget_space(dataset)
        defer { H5Tclose(stored); H5Sclose(space) }
        return try Self.decodeStrings(stored: stored, space: space, count: info.count) { type, buffer in
            guard H5Dread(dataset, type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer) >= 0 else {
                throw error(name, "read failed (file truncated or corrupt?)")
            }
        }
    }

    /// A string or string-array attribute of a dataset or group, or nil if absent.
    public func stringAttribute(_ object: String, _ attribute: String) throws -> [String]? {
        guard exists(object) || object == "/" else { return nil }
        let target = H5Oopen(id, object, chdf5_p_default())
        guard target >= 0 else { return nil }
        defer { H5Oclose(target) }
        guard H5Aexists(target, attribute) > 0 else { return nil }
        let handle = H5Aopen(target, attribute, chdf5_p_default())
        defer { H5Aclose(handle) }
        let stored = H5Aget_type(handle), space = H5Aget_space(handle)
        defer { H5Tclose(stored); H5Sclose(space) }
        guard H5Tget_class(stored) == H5T_STRING else { throw error(object, "attribute \(attribute) is not a string") }
        let count = max(1, try checkedShape(space, elementBytes: H5Tget_size(stored), "\(object) attribute \(attribute)").count)
        return try Self.decodeStrings(stored: stored, space: space, count: count) { type, buffer in
            guard H5Aread(handle, type, buffer) >= 0 else { throw error(object, "cannot read attribute \(attribute)") }
        }
    }

    /// Reads `count` strings stored with type `stored` through `read(memoryType, buffer)`:
    /// variable-length strings as C pointers (reclaimed afterwards), fixed-length ones as
    /// NUL-padded fields.
    private static func decodeStrings(
        stored: hid_t, space: hid_t, count: Int, _ read: (hid_t, UnsafeMutableRawPointer) throws -> Void
    ) throws -> [String] {
        guard count > 0 else { return [] }
        if H5Tis_variable_str(stored) > 0 {
            let type = stringType()
            defer { H5Tclose(type) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try pointers.withUnsafeMutableBytes { try read(type, $0.baseAddress!) }
            defer { H5Dvlen_reclaim(type, space, chdf5_p_default(), &pointers) }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        let width = H5Tget_size(stored)
        var bytes = [UInt8](repeating: 0, count: width * count)
        try bytes.withUnsafeMutableBytes { try read(stored, $0.baseAddress!) }
        return (0..<count).map { String(decoding: bytes[($0 * width)..<(($0 + 1) * width)].prefix { $0 != 0 }, as: UTF8.self) }
    }

    // MARK: Foreign files (groups, numeric attributes, compound columns)

    /// Whether `name` is a group (false for datasets and missing paths).
    public func isGroup(_ name: String) -> Bool {
        guard name == "/" || exists(name) else { return false }
        let object = H5Oopen(id, name, chdf5_p_default())
        guard object >= 0 else { return false }
        defer { H5Oclose(object) }
        return H5Iget_type(object) == H5I_GROUP
    }

    /// The names of a group's members, in name order.
    public func members(_ group: String) throws -> [String] {
        guard isGroup(group) else { throw error(group, "missing group") }
        let handle = H5Gopen2(id, group, chdf5_p_default())
        defer { H5Gclose(handle) }
        var info = H5G_info_t()
        H5Gget_info(handle, &info)
        return (0..<info.nlinks).map { index in
            let size = H5Lget_name_by_idx(handle, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, chdf5_p_default())
            var buffer = [CChar](repeating: 0, count: Int(max(size, 0)) + 1)
            H5Lget_name_by_idx(handle, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, chdf5_p_default())
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// An integer (or integer-array) attribute, or nil if absent.
    public func integerAttribute(_ object: String, _ attribute: String) throws -> [Int]? {
        guard exists(object) || object == "/" else { return nil }
        let target = H5Oopen(id, object, chdf5_p_default())
        guard target >= 0 else { return nil }
        defer { H5Oclose(target) }
        guard H5Aexists(target, attribute) > 0 else { return nil }
        let handle = H5Aopen(target, attribute, chdf5_p_default())
        let space = H5Aget_space(handle), stored = H5Aget_type(handle)
        defer { H5Aclose(handle); H5Sclose(space); H5Tclose(stored) }
        guard H5Tget_class(stored) == H5T_INTEGER else { throw error(object, "attribute \(attribute) is not an integer") }
        let count = try checkedShape(space, elementBytes: 8, "\(object) attribute \(attribute)").count
        var values = [Int64](repeating: 0, count: max(1, count))
        guard H5Aread(handle, chdf5_native_int64(), &values) >= 0 else { throw error(object, "cannot read attribute \(attribute)") }
        return values.map(Int.init)
    }

    /// The field names of a compound (table) dataset, such as the `obs` of a legacy `.h5ad`.
    public func fields(_ name: String) throws -> [String] {
        let dataset = try openDataset(name)
        let stored = H5Dget_type(dataset)
        defer { H5Tclose(stored); H5Dclose(dataset) }
        guard H5Tget_class(stored) == H5T_COMPOUND else { return [] }
        let members = H5Tget_nmembers(stored)
        guard members >= 0 else { throw error(name, "unreadable table type (file corrupt?)") }
        return try (0..<UInt32(members)).map { index in
            guard let pointer = H5Tget_member_name(stored, index) else { throw error(name, "field \(index) has no readable name (file corrupt?)") }
            defer { H5free_memory(pointer) }
            return String(cString: pointer)
        }
    }

    /// One numeric field of a compound dataset, converted to `T`.
    public func readField<T: HDF5Scalar>(_ name: String, _ field: String, as _: T.Type = T.self) throws -> [T] {
        try withField(name, field) { dataset, _, count in
            let memory = H5Tcreate(H5T_COMPOUND, MemoryLayout<T>.stride)
            defer { H5Tclose(memory) }
            H5Tinsert(memory, field, 0, T.hdf5Type)
            var values = [T](repeating: .zero, count: count)
            guard values.withUnsafeMutableBytes({ H5Dread(dataset, memory, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }) >= 0 else {
                throw error(name, "field \(field) cannot be read as \(T.typeName)")
            }
            return values
        }
    }

    /// One fixed-length string field of a compound dataset.
    public func readStringField(_ name: String, _ field: String) throws -> [String] {
        try withField(name, field) { dataset, member, count in
            guard H5Tget_class(member) == H5T_STRING, H5Tis_variable_str(member) <= 0 else {
                throw error(name, "field \(field) is not a fixed-length string")
            }
            let width = H5Tget_size(member)
            let memory = H5Tcreate(H5T_COMPOUND, width)
            defer { H5Tclose(memory) }
            H5Tinsert(memory, field, 0, member)
            var bytes = [UInt8](repeating: 0, count: width * count)
            guard H5Dread(dataset, memory, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), &bytes) >= 0 else {
                throw error(name, "field \(field) cannot be read")
            }
            return (0..<count).map { String(decoding: bytes[($0 * width)..<(($0 + 1) * width)].prefix { $0 != 0 }, as: UTF8.self) }
        }
    }

    private func withField<R>(_ name: String, _ field: String, _ body: (hid_t, hid_t, Int) throws -> R) throws -> R {
        let dataset = try openDataset(name)
        let stored = H5Dget_type(dataset)
        defer { H5Tclose(stored); H5Dclose(dataset) }
        let index = H5Tget_member_index(stored, field)
        guard H5Tget_class(stored) == H5T_COMPOUND, index >= 0 else {
            throw error(name, "has no field \(field) (fields: \((try? fields(name))?.joined(separator: ", ") ?? "none"))")
        }
        let member = H5Tget_member_type(stored, UInt32(index))
        defer { H5Tclose(member) }
        return try body(dataset, member, try info(of: dataset, name).count)
    }

    private func openDatasetKept(_ name: String) throws -> hid_t {
        if let dataset = keptDatasets[name] { return dataset }
        let dataset = try openDataset(name)
        keptDatasets[name] = dataset
        return dataset
    }

    private func openDataset(_ name: String) throws -> hid_t {
        guard exists(name) else { throw error(name, "missing dataset") }
        let dataset = H5Dopen2(id, name, chdf5_p_default())
        guard dataset >= 0 else { throw error(name, "not a dataset (a group?) or unreadable") }
        return dataset
    }

    private func info(of dataset: hid_t, _ name: String) throws -> DatasetInfo {
        let space = H5Dget_space(dataset), type = H5Dget_type(dataset)
        defer { H5Sclose(space); H5Tclose(type) }
        let shape = try checkedShape(space, elementBytes: H5Tget_size(type), name).shape
        let bits = H5Tget_size(type) * 8
        let typeName: String
        switch H5Tget_class(type) {
        case H5T_FLOAT: typeName = "float\(bits)"
        case H5T_INTEGER: typeName = (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + "\(bits)"
        case H5T_STRING: typeName = "string"
        case H5T_COMPOUND: typeName = "compound"
        default: typeName = "other"
        }
        return DatasetInfo(shape: shape, typeName: typeName)
    }

    /// Stored bytes a dataset may declare per byte of its file: deflate, the filter HDF5 files
    /// use, compresses at most ~1032:1, so more than twice that means the header is corrupt.
    private static let maximumExpansion = 2048
    /// What any dataset may declare whatever the file's size (chunks never written read as fill
    /// values and take no space, so a small file may legitimately declare some).
    private static let minimumAllowance = 64 << 20

    /// The shape of a dataspace, with its element count, checked before anything is allocated
    /// from it: every dimension fits an `Int`, their product does not overflow, and the elements
    /// (`elementBytes` each) are at most `maximumExpansion` × the file's bytes, or
    /// `minimumAllowance`. Anything else is a corrupt header, refused with the dataset named.
    private func checkedShape(_ space: hid_t, elementBytes: Int, _ name: String) throws -> (shape: [Int], count: Int) {
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        guard rank >= 0, H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else { throw error(name, "unreadable dataspace (file corrupt?)") }
        let corrupt = "the file is corrupt (re-export or re-download it)"
        var shape = [Int](), count = 1
        for dim in dims.prefix(rank) {
            guard let size = Int(exactly: dim), case let (product, false) = count.multipliedReportingOverflow(by: size) else {
                throw error(name, "declares dimensions \(Array(dims.prefix(rank))) whose product overflows: \(corrupt)")
            }
            shape.append(size)
            count = product
        }
        var fileBytes: hsize_t = 0
        H5Fget_filesize(id, &fileBytes)
        let (expanded, huge) = Int(clamping: fileBytes).multipliedReportingOverflow(by: Self.maximumExpansion)
        let allowed = max(Self.minimumAllowance, huge ? .max : expanded)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementBytes, 1))
        guard !overflow, bytes <= allowed else {
            throw error(name, "declares \(shape) = \(count) elements of \(elementBytes) bytes, more than a file of \(fileBytes) bytes can hold "
                + "(at most \(Self.maximumExpansion)× its size, or \(Self.minimumAllowance >> 20) MiB): \(corrupt)")
        }
        return (shape, count)
    }

    private func error(_ dataset: String, _ message: String) -> CohortError {
        CohortError(file: path, dataset: dataset, message)
    }
}

/// Calls `body` with NUL-terminated copies of `strings` (valid only inside `body`).
private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutableBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeMutableBufferPointer { body($0) }
}

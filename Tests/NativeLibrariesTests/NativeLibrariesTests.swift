import CHDF5
import CMPI
import COpenBLAS
import CZstd
import Foundation
import XCTest

/// The system-library targets link and their shims return usable values.
final class NativeLibrariesTests: XCTestCase {
    func testCBLASMultipliesMatrices() {
        let a: [Float] = [1, 2, 3, 4, 5, 6]  // 2×3
        let b: [Float] = [1, 0, 0, 1, 1, 1]  // 3×2
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [4, 5, 10, 11])
        XCTAssertGreaterThanOrEqual(copenblas_threads(), 1)
    }

    func testZstdRoundTrip() {
        let input = [UInt8]((0..<100_000).map { UInt8(truncatingIfNeeded: $0 / 7) })
        var compressed = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let size = ZSTD_compress(&compressed, compressed.count, input, input.count, 1)
        XCTAssertEqual(ZSTD_isError(size), 0)
        XCTAssertLessThan(size, input.count / 4, "runs of 7 equal bytes compress well")
        XCTAssertEqual(ZSTD_getFrameContentSize(compressed, size), UInt64(input.count))
        XCTAssertNotEqual(ZSTD_getFrameContentSize(compressed, size), czstd_content_size_error())
        var output = [UInt8](repeating: 0, count: input.count)
        XCTAssertEqual(ZSTD_decompress(&output, output.count, compressed, size), input.count)
        XCTAssertEqual(output, input)
    }

    func testHDF5WritesAndReadsAFloatDataset() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("native-\(UUID()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = [0.5, -1, 2, 3e9]
        var dims: [hsize_t] = [2, 2]

        let file = H5Fcreate(path, chdf5_acc_trunc(), chdf5_p_default(), chdf5_p_default())
        XCTAssertGreaterThanOrEqual(file, 0)
        let space = H5Screate_simple(2, &dims, nil)
        let dataset = H5Dcreate2(file, "x", chdf5_native_float(), space, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
        XCTAssertGreaterThanOrEqual(dataset, 0)
        XCTAssertGreaterThanOrEqual(H5Dwrite(dataset, chdf5_native_float(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), values), 0)
        H5Dclose(dataset); H5Sclose(space); H5Fclose(file)

        let reopened = H5Fopen(path, chdf5_acc_rdonly(), chdf5_p_default())
        let read = H5Dopen2(reopened, "x", chdf5_p_default())
        var back = [Float](repeating: 0, count: 4)
        XCTAssertGreaterThanOrEqual(H5Dread(read, chdf5_native_float(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), &back), 0)
        H5Dclose(read); H5Fclose(reopened)
        XCTAssertEqual(back, values)
    }

    func testMPIShimsReturnDistinctHandles() {
        XCTAssertNotEqual(cmpi_type_float(), cmpi_type_double())
        XCTAssertNotEqual(cmpi_op_sum(), cmpi_op_max())
        XCTAssertNotEqual(cmpi_comm_world(), cmpi_comm_null())
        XCTAssertNotNil(cmpi_in_place())
    }
}

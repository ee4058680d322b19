"""parse_analyze on every !analyze in the transcripts; expected values were read from the .log files."""

from __future__ import annotations

import re
from pathlib import Path

from dbgauto.debugtext import AnalyzeArgument, parse_analyze, split_commands

_META_RE = re.compile(r"^# (?:source|kind|extracted|note):|^# ---$")


def transcript(transcripts_dir: Path, stem: str) -> str:
    path = next(transcripts_dir.glob(f"{stem}_*.log"))
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))


def analyze_of(transcripts_dir: Path, stem: str, command: str = "!analyze -v", nth: int = 0):
    blocks = [b for b in split_commands(transcript(transcripts_dir, stem)) if b.command == command]
    return parse_analyze(blocks[nth].output)


def test_t01_new_style_in_two_pieces(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T01")
    assert a.kind == "bugcheck"
    assert (a.bugcheck_name, a.bugcheck_code) == ("DRIVER_IRQL_NOT_LESS_OR_EQUAL", 0xD1)
    assert a.description is not None
    assert a.description.startswith("An attempt was made to access a pageable (or completely invalid) address at an")
    assert a.description.endswith("If kernel debugger is available get stack backtrace.")
    assert a.arguments == (
        AnalyzeArgument(1, 0xFFFFD8024AAA8010, "memory referenced"),
        AnalyzeArgument(2, 2, "IRQL"),
        AnalyzeArgument(3, 0, "value 0 = read operation, 1 = write operation"),
        AnalyzeArgument(4, 0xFFFFF80060DA1981, "address which referenced memory"),
    )
    # the blogger cut KEY_VALUES..BUGCHECK_P4: the second piece starts at PROCESS_NAME, fields without blank lines
    assert list(a.fields) == [
        "PROCESS_NAME",
        "TRAP_FRAME",
        "STACK_TEXT",
        "SYMBOL_NAME",
        "MODULE_NAME",
        "IMAGE_NAME",
        "STACK_COMMAND",
        "BUCKET_ID_FUNC_OFFSET",
        "FAILURE_BUCKET_ID",
        "OS_VERSION",
        "BUILDLAB_STR",
        "OSPLATFORM_TYPE",
        "OSNAME",
        "FAILURE_ID_HASH",
    ]
    assert a.process_name == "notmyfault64.exe"
    assert a.symbol_name == "myfault+1981"
    assert a.module_name == "myfault"
    assert a.image_name == "myfault.sys"
    assert a.culprit == "myfault.sys"
    assert a.failure_bucket_id == "AV_myfault!unknown_function"
    assert a.os_version == "10.0.19041.1"
    assert a.buildlab == "vb_release"
    assert a.fields["STACK_COMMAND"] == ".thread ; .cxr ; kb"
    assert a.fields["FAILURE_ID_HASH"] == "{9745090a-9bce-ccba-c096-ca6e9ca04c64}"
    assert a.followup == "MachineOwner"
    trap = a.fields["TRAP_FRAME"].splitlines()
    assert trap[0] == "ffffd48f77af97e0 -- (.trap 0xffffd48f77af97e0)"
    assert trap[-1] == "Resetting default scope"
    assert " r8=ffffd8024abbdc80  r9=0000000000000000 r10=ffffd80241e002c0" in trap
    assert len(a.stack) == 12
    assert a.stack[0].call_site == "nt!KeBugCheckEx"
    assert a.stack[3].call_site == "myfault+0x1981"
    assert a.stack[-1].address == 0x7FF8F16ECE54
    assert a.style is None  # neither BUGCHECK_CODE/KEY_VALUES nor BUGCHECK_STR survived the cut


def test_t03_old_style_damaged_header(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T03")
    # "MAXIMUM_WAIT_OBJECTS_EXCEEDED" and " (c)" were split over lines by the blog's conversion
    assert (a.bugcheck_name, a.bugcheck_code) == ("MAXIMUM_WAIT_OBJECTS_EXCEEDED", 0xC)
    assert a.description is None
    assert a.arguments == tuple(AnalyzeArgument(i, 0, None) for i in range(1, 5))  # "Arg1: 00000000", no text
    assert a.style == "old"
    assert a.bugcheck_str == "0xC"
    assert a.default_bucket_id == "DRIVER_FAULT"
    assert a.process_name == "System"
    assert a.fields["CUSTOMER_CRASH_COUNT"] == "1"
    assert a.fields["LAST_CONTROL_TRANSFER"] == "from 804fa83f to 804f9c12"
    assert a.fields["FOLLOWUP_IP"] == "mydriver+199e\nbac9199e 8b44241c        mov     eax,dword ptr [esp+1Ch]"
    assert a.fields["SYMBOL_STACK_INDEX"] == "2"
    assert a.fields["DEBUG_FLR_IMAGE_TIMESTAMP"] == "42d2747c"
    assert a.symbol_name == "mydriver+199e"
    assert (a.module_name, a.image_name) == ("mydriver", "mydriver.sys")
    assert a.failure_bucket_id == "0xC_mydriver+199e"
    assert a.bucket_id == "0xC_mydriver+199e"
    assert a.followup == "MachineOwner"
    assert "ERROR" not in a.fields  # "ERROR: FindPlugIns 8007007b" is a message, not a field
    assert len(a.stack) == 10


def test_t04_joke_lines_tolerated(transcripts_dir: Path) -> None:
    blocks = split_commands(transcript(transcripts_dir, "T04"))
    a = parse_analyze(blocks[1].output)
    assert (a.bugcheck_name, a.bugcheck_code) == ("UNEXPECTED_KERNEL_MODE_TRAP", 0x7F)
    assert a.arguments[0] == AnalyzeArgument(1, 0xD, "EXCEPTION_GP_FAULT")
    assert a.arguments[1:] == tuple(AnalyzeArgument(i, 0, None) for i in range(2, 5))
    assert a.description is not None
    assert "        use .tss on the part before the colon, then kv." in a.description.splitlines()
    assert a.description.splitlines()[-1] == "kb will then show the corrected stack."
    assert a.bugcheck_str == "0x7f_d"
    assert a.process_name == "cmd.eze"  # the post's typo, kept as printed
    assert a.symbol_name == "MyDriver!KeBugCheckTest+0x2b"
    assert a.image_name == "MyDriver.sys"
    # the invented "BugCheck Fix Tip:" / "Tip Code:" lines are not fields and do not leak into the last field
    assert a.fields["DEBUG_FLR_IMAGE_TIMESTAMP"] == "4baa49d3"
    assert not any("Tip" in name for name in a.fields)
    assert a.followup == "MachineOwner"
    assert [f.call_site for f in a.stack] == [
        "nt!KiSystemFatalException+0xf",
        "nt!NonPagedPoolDescriptor+0xb2",
        "MyDriver!KeBugCheckTest+0x2b",
        "nt!IopfCallDriver+0x31",
        "mfehidk+0x9128",
        "mfehidk+0x9e4d",
        "cmd!ExecPgm+0x22b",
        "kernel32!BaseProcessStart+0x23",
    ]


def test_t06_analyze_without_v(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T06", "!analyze")
    assert (a.bugcheck_name, a.bugcheck_code) == ("BAD_POOL_HEADER", 0x19)
    # "Arg1: 0000000000000022, " — trailing comma and space, empty description
    assert a.arguments == (
        AnalyzeArgument(1, 0x22, None),
        AnalyzeArgument(2, 0xFFFFBD06D46E0000, None),
        AnalyzeArgument(3, 1, None),
        AnalyzeArgument(4, 0, None),
    )
    assert a.style == "new"
    assert [a.fields[f"BUGCHECK_P{i}"] for i in range(1, 5)] == ["22", "ffffbd06d46e0000", "1", "0"]
    assert a.fields["BUGCHECK_CODE"] == "19"
    assert a.symbol_name == "Driver+1170"
    assert a.culprit == "Driver.sys"
    assert a.failure_bucket_id == "0x19_22_Driver!unknown_function"
    assert a.stack == ()


def test_t07_new_style_key_values(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T07")
    assert (a.bugcheck_name, a.bugcheck_code) == ("KERNEL_SECURITY_CHECK_FAILURE", 0x139)
    assert a.arguments[0] == AnalyzeArgument(1, 0x1D, "An RTL_BALANCED_NODE RBTree entry has been corrupted.")
    assert a.arguments[3] == AnalyzeArgument(4, 0, "Reserved")
    assert a.parameters == (0x1D, 0xFFFFB88F1487EC30, 0xFFFFB88F1487EB88, 0)
    assert a.style == "new"
    assert len(a.key_values) == 58
    assert a.key_values["Analysis.CPU.mSec"] == "3218"
    assert a.key_values["FailFast.Name"] == "INVALID_BALANCED_TREE"
    assert a.key_values["Failure.Bucket"] == "0x139_1d_INVALID_BALANCED_TREE_Driver!unknown_function"
    assert a.key_values["WER.OS.Version"] == "10.0.22621.1928"
    assert a.fields["KEY_VALUES_STRING"].splitlines()[0] == "1"
    assert a.fields["DUMP_FILE_ATTRIBUTES"] == "0x800"
    assert a.fields["VIRTUAL_MACHINE"] == "HyperV"
    assert a.fields["BLACKBOXBSD"] == "1 (!blackboxbsd)"
    assert a.fields["EXCEPTION_CODE_STR"] == "c0000409"
    assert a.fields["ERROR_CODE"].startswith("(NTSTATUS) 0xc0000409 - The system detected an overrun")
    # EXCEPTION_RECORD keeps the embedded .exr output, with the trailing space after the Subcode line
    exr = a.fields["EXCEPTION_RECORD"].splitlines()
    assert exr[0] == "ffffb88f1487eb88 -- (.exr 0xffffb88f1487eb88)"
    assert exr[-1] == "Subcode: 0x1d FAST_FAIL_INVALID_BALANCED_TREE "
    assert a.fields["STACK_COMMAND"] == ".cxr; .ecxr ; kb"
    assert a.symbol_name == "Driver+11b1"
    assert a.os_version == "10.0.22621.1928"
    assert a.buildlab == "ni_release_svc_prod3"
    assert a.process_name == "System"
    assert len(a.stack) == 18
    assert a.stack[8].call_site == "Driver+0x11b1"
    assert a.stack[8].args == (0x2, 0xFFFFF8073D0532D8, 0xFFFFF78000000320, 0xFFFFFFFF80001CEC)


def test_t08_private_symbols_source_listing(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T08")
    assert (a.bugcheck_name, a.bugcheck_code) == ("DRIVER_IRQL_NOT_LESS_OR_EQUAL", 0xD1)
    assert a.arguments[2] == AnalyzeArgument(3, 8, "value 0 = read operation, 1 = write operation")
    assert a.fields["READ_ADDRESS"] == "fffff803712e5000"  # trailing space removed
    ip = a.fields["IP_IN_PAGED_CODE"].splitlines()
    assert (
        ip[0] == r"TestDriver!AccessPageableMemory+0 [C:\Users\User\source\repos\TestDriver\TestDriver\Driver.c @ 11]"
    )
    assert ip[1] == 'Page 24d116 not present in the dump file. Type ".hh dbgerr004" for details'
    assert a.fields["FAULTING_SOURCE_LINE_NUMBER"] == "11"
    assert a.fields["FAULTING_SOURCE_FILE"] == r"C:\Users\User\source\repos\TestDriver\TestDriver\Driver.c"
    source = a.fields["FAULTING_SOURCE_CODE"].splitlines()
    assert source[0] == "     7: // Place the AccessPageableMemory function in a pageable section."
    assert ">   11: void AccessPageableMemory() {" in source
    assert source[-1] == "    16: "
    assert a.symbol_name == "TestDriver!AccessPageableMemory+0"
    assert a.culprit == "TestDriver.sys"
    assert a.key_values["Failure.Bucket"] == "AV_CODE_AV_PAGED_IP_TestDriver!AccessPageableMemory"
    frame = a.stack[3]
    assert frame.call_site == "TestDriver!AccessPageableMemory"
    assert frame.source_file == r"C:\Users\User\source\repos\TestDriver\TestDriver\Driver.c"
    assert frame.source_line == 11


def test_t08_analyze_show(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T08", "!analyze -show")
    assert (a.bugcheck_name, a.bugcheck_code) == ("DRIVER_IRQL_NOT_LESS_OR_EQUAL", 0xD1)
    assert a.parameters == (0xFFFFF803712E5000, 2, 8, 0xFFFFF803712E5000)
    assert a.fields == {}
    assert a.kind == "bugcheck"


def test_t09_report_fragments_without_prompt(transcripts_dir: Path) -> None:
    a = parse_analyze(split_commands(transcript(transcripts_dir, "T09"))[0].output)
    assert (a.bugcheck_name, a.bugcheck_code) == ("MANUALLY_INITIATED_CRASH", 0xE2)
    assert a.description == "The user manually initiated this crash dump."
    assert a.parameters == (0, 0, 0, 0)
    assert list(a.fields) == ["STACK_TEXT", "SYMBOL_NAME", "TRAP_FRAME"]
    assert a.symbol_name == "i8042prt!I8xProcessCrashDump+24f"  # right after the last frame, no blank line
    assert a.fields["TRAP_FRAME"].splitlines() == [
        "ffffd60c00000001 -- (.trap 0xffffd60c00000001)",
        "Unable to read trap frame at ffffd60c`00000001",
        "Resetting default scope",
    ]
    assert len(a.stack) == 14
    assert a.stack[-1].call_site == "0x00007ff9`573b55c4"


def test_t10_report_fragments(transcripts_dir: Path) -> None:
    a = parse_analyze(split_commands(transcript(transcripts_dir, "T10"))[0].output)
    assert (a.bugcheck_name, a.bugcheck_code) == ("MANUALLY_INITIATED_CRASH", 0xE2)
    assert len(a.stack) == 7
    assert a.stack[-1].call_site == "nt!KiIdleLoop+0x32"
    assert "r8=0000000000000000  r9=0000000000000000 r10=0000000000000000" in a.fields["TRAP_FRAME"].splitlines()


def test_t11_whea_new_style(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T11")
    assert (a.bugcheck_name, a.bugcheck_code) == ("WHEA_UNCORRECTABLE_ERROR", 0x124)
    assert a.arguments == (
        AnalyzeArgument(1, 0x10, "Device Driver Error"),
        AnalyzeArgument(2, 0xFFFF9C0D98CC1028, "Address of the nt!_WHEA_ERROR_RECORD structure."),
        AnalyzeArgument(3, 0xFFFF9C0D7F97192C, None),
        AnalyzeArgument(4, 0xFFFF9C0D7F9971A0, None),
    )
    assert a.description is not None
    assert a.description.splitlines()[-1].endswith("to get more details.")
    assert a.fields["DUMP_FILE_ATTRIBUTES"] == "0x8\n  Kernel Generated Triage Dump"
    assert a.key_values["Analysis.Version.DbgEng"] == "10.0.29617.1000"
    assert a.key_values["Dump.Attributes.KernelGeneratedTriageDump"] == "1"
    assert len(a.key_values) == 18
    assert a.symbol_name is None  # this run prints no SYMBOL_NAME
    assert (a.module_name, a.image_name) == ("GenuineIntel", "GenuineIntel.sys")
    assert a.fields["STACK_COMMAND"] == ".process /r /p 0xffff9c0d7d8d9140; .thread /r /p 0xffff9c0d84ab2040 ; kb"
    assert a.fields["FAULTING_THREAD"] == "ffff9c0d84ab2040"
    assert a.fields["CUSTOMER_CRASH_COUNT"] == "1"
    assert a.failure_bucket_id == "0x124_16_GenuineIntel__UNKNOWN_IMAGE_GenuineIntel.sys"
    assert len(a.stack) == 15
    assert "WARNING" not in a.fields


def test_t12_old_debugger_old_style(transcripts_dir: Path) -> None:
    a = analyze_of(transcripts_dir, "T12")
    assert (a.bugcheck_name, a.bugcheck_code) == ("SYSTEM_SERVICE_EXCEPTION", 0x3B)
    assert a.arguments[3] == AnalyzeArgument(4, 0, "zero.")
    assert a.fields["EXCEPTION_CODE"] == "(NTSTATUS) 0xc0000005 - 0x%p"  # unexpanded format, kept as printed
    assert a.fields["FAULTING_IP"].splitlines()[0] == "nt!RtlpUnwindPrologue+204"
    ctx = a.fields["CONTEXT"].splitlines()
    assert ctx[0] == "ffffa005550bd940 -- (.cxr 0xffffa005550bd940)"
    assert "cs=0010  ss=0018  ds=002b  es=002b  fs=0053  gs=002b             efl=00050296" in ctx
    assert a.fields["BAD_PAGES_DETECTED"] == "1c200"
    assert a.fields["CURRENT_IRQL"] == "0"
    assert a.symbol_name == "PAGE_NOT_ZERO"
    assert (a.module_name, a.image_name) == ("Unknown_Module", "Unknown_Image")
    assert a.culprit is None  # "Unknown_Image" names no driver
    assert a.default_bucket_id == "VISTA_DRIVER_FAULT"
    assert a.bucket_id == "PAGE_NOT_ZERO"
    assert a.process_name == "sppsvc.exe"
    assert a.style == "old"
    assert a.followup == "MachineOwner"
    assert len(a.stack) == 1


def test_d03_doc_fragments(transcripts_dir: Path) -> None:
    user = analyze_of(transcripts_dir, "D03", nth=0)
    assert user.kind == "exception"
    assert user.bugcheck_name is None
    assert user.bugcheck_code is None  # BUGCHECK_STR 80000003 is an exception code in user mode
    assert user.bugcheck_str == "80000003"
    assert user.process_name == "MyApp.exe"
    assert user.fields["FOLLOWUP_NAME"] == "dbg"
    assert user.followup == "dbg"
    assert user.stack[1].source == r"D:\source_files\MyApp\util.c @ 541"

    kernel = analyze_of(transcripts_dir, "D03", nth=1)
    assert (kernel.bugcheck_name, kernel.bugcheck_code) == ("DRIVER_IRQL_NOT_LESS_OR_EQUAL", 0xD1)
    assert kernel.parameters == (4, 2, 1, 0xF832035C)  # 32-bit
    # "## Debugging Details:" (doc heading syntax) still opens the field section
    assert list(kernel.fields)[:2] == ["WRITE_ADDRESS", "CURRENT_IRQL"]
    assert kernel.fields["WRITE_ADDRESS"] == "00000004 Nonpaged pool"
    trap = kernel.fields["TRAP_FRAME"].splitlines()
    assert trap[1:3] == [".trap fffffffff8950dfc", "ErrCode = 00000002"]
    assert trap[-1] == "Resetting default context"
    assert kernel.bugcheck_str == "0xD1"
    assert kernel.fields["FOLLOWUP_NAME"] == "usbtri"
    assert kernel.bucket_id == "0xD1_W_USBPORT!USBPORT_BadRequestFlush+7c"
    assert kernel.module_name == "USBPORT"
    assert kernel.followup is None


def test_bugcheck_str_gives_the_code_when_no_header() -> None:
    a = parse_analyze("BUGCHECK_STR:  0x7f_d\n\nDEFAULT_BUCKET_ID:  DRIVER_FAULT\n")
    assert a.bugcheck_code == 0x7F
    assert a.style == "old"


def test_nothing_to_read() -> None:
    a = parse_analyze("Mex External 3.0.0.7172 Loaded!")
    assert a.bugcheck_name is None
    assert a.fields == {}
    assert a.arguments == ()
    assert parse_analyze("").to_dict()["fields"] == {}

package pdu

import "fmt"

// Status is an SMPP command_status (section 5.1.3).
type Status uint32

// The command_status values of SMPP 3.4. Names follow the specification
// without the ESME_ prefix (ESME_RTHROTTLED is RThrottled).
const (
	OK               Status = 0x00000000
	RInvMsgLen       Status = 0x00000001
	RInvCmdLen       Status = 0x00000002
	RInvCmdID        Status = 0x00000003
	RInvBndSts       Status = 0x00000004
	RAlyBnd          Status = 0x00000005
	RInvPrtFlg       Status = 0x00000006
	RInvRegDlvFlg    Status = 0x00000007
	RSysErr          Status = 0x00000008
	RInvSrcAdr       Status = 0x0000000A
	RInvDstAdr       Status = 0x0000000B
	RInvMsgID        Status = 0x0000000C
	RBindFail        Status = 0x0000000D
	RInvPaswd        Status = 0x0000000E
	RInvSysID        Status = 0x0000000F
	RCancelFail      Status = 0x00000011
	RReplaceFail     Status = 0x00000013
	RMsgQFul         Status = 0x00000014
	RInvSerTyp       Status = 0x00000015
	RInvNumDests     Status = 0x00000033
	RInvDLName       Status = 0x00000034
	RInvDestFlag     Status = 0x00000040
	RInvSubRep       Status = 0x00000042
	RInvEsmClass     Status = 0x00000043
	RCntSubDL        Status = 0x00000044
	RSubmitFail      Status = 0x00000045
	RInvSrcTON       Status = 0x00000048
	RInvSrcNPI       Status = 0x00000049
	RInvDstTON       Status = 0x00000050
	RInvDstNPI       Status = 0x00000051
	RInvSysTyp       Status = 0x00000053
	RInvRepFlag      Status = 0x00000054
	RInvNumMsgs      Status = 0x00000055
	RThrottled       Status = 0x00000058
	RInvSched        Status = 0x00000061
	RInvExpiry       Status = 0x00000062
	RInvDftMsgID     Status = 0x00000063
	RxTAppn          Status = 0x00000064
	RxPAppn          Status = 0x00000065
	RxRAppn          Status = 0x00000066
	RQueryFail       Status = 0x00000067
	RInvOptParStream Status = 0x000000C0
	ROptParNotAllwd  Status = 0x000000C1
	RInvParLen       Status = 0x000000C2
	RMissingOptParam Status = 0x000000C3
	RInvOptParamVal  Status = 0x000000C4
	RDeliveryFailure Status = 0x000000FE
	RUnknownErr      Status = 0x000000FF
)

var statusNames = map[Status]string{
	OK: "ESME_ROK", RInvMsgLen: "ESME_RINVMSGLEN", RInvCmdLen: "ESME_RINVCMDLEN", RInvCmdID: "ESME_RINVCMDID",
	RInvBndSts: "ESME_RINVBNDSTS", RAlyBnd: "ESME_RALYBND", RInvPrtFlg: "ESME_RINVPRTFLG", RInvRegDlvFlg: "ESME_RINVREGDLVFLG",
	RSysErr: "ESME_RSYSERR", RInvSrcAdr: "ESME_RINVSRCADR", RInvDstAdr: "ESME_RINVDSTADR", RInvMsgID: "ESME_RINVMSGID",
	RBindFail: "ESME_RBINDFAIL", RInvPaswd: "ESME_RINVPASWD", RInvSysID: "ESME_RINVSYSID", RCancelFail: "ESME_RCANCELFAIL",
	RReplaceFail: "ESME_RREPLACEFAIL", RMsgQFul: "ESME_RMSGQFUL", RInvSerTyp: "ESME_RINVSERTYP", RInvNumDests: "ESME_RINVNUMDESTS",
	RInvDLName: "ESME_RINVDLNAME", RInvDestFlag: "ESME_RINVDESTFLAG", RInvSubRep: "ESME_RINVSUBREP", RInvEsmClass: "ESME_RINVESMCLASS",
	RCntSubDL: "ESME_RCNTSUBDL", RSubmitFail: "ESME_RSUBMITFAIL", RInvSrcTON: "ESME_RINVSRCTON", RInvSrcNPI: "ESME_RINVSRCNPI",
	RInvDstTON: "ESME_RINVDSTTON", RInvDstNPI: "ESME_RINVDSTNPI", RInvSysTyp: "ESME_RINVSYSTYP", RInvRepFlag: "ESME_RINVREPFLAG",
	RInvNumMsgs: "ESME_RINVNUMMSGS", RThrottled: "ESME_RTHROTTLED", RInvSched: "ESME_RINVSCHED", RInvExpiry: "ESME_RINVEXPIRY",
	RInvDftMsgID: "ESME_RINVDFTMSGID", RxTAppn: "ESME_RX_T_APPN", RxPAppn: "ESME_RX_P_APPN", RxRAppn: "ESME_RX_R_APPN",
	RQueryFail: "ESME_RQUERYFAIL", RInvOptParStream: "ESME_RINVOPTPARSTREAM", ROptParNotAllwd: "ESME_ROPTPARNOTALLWD",
	RInvParLen: "ESME_RINVPARLEN", RMissingOptParam: "ESME_RMISSINGOPTPARAM", RInvOptParamVal: "ESME_RINVOPTPARAMVAL",
	RDeliveryFailure: "ESME_RDELIVERYFAILURE", RUnknownErr: "ESME_RUNKNOWNERR",
}

// String returns the specification's name ("ESME_RTHROTTLED"), or the
// number for a status it does not define (SMSC vendors use 0x400–0x4FF).
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("command_status(0x%08X)", uint32(s))
}

// StatusByName returns the status the specification names name
// ("ESME_RTHROTTLED" or "RTHROTTLED"), for configuration and fakes.
func StatusByName(name string) (Status, bool) {
	for s, n := range statusNames {
		if n == name || n == "ESME_"+name {
			return s, true
		}
	}
	return 0, false
}

// Error makes a non-OK Status usable as an error.
func (s Status) Error() string { return s.String() }

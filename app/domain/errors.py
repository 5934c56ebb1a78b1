"""The catalogue of machine-readable error codes with their Chinese messages.

Codes are part of the public API (docs/api.md lists them); never rename one, only add.
"""

from dataclasses import dataclass

MESSAGES: dict[str, str] = {
    # request-level
    "VALIDATION_FAILED": "请求数据校验未通过",
    "MALFORMED_JSON": "请求体不是合法的 JSON",
    "PAYLOAD_TOO_LARGE": "请求体超过大小限制",
    "BATCH_TOO_LARGE": "批量上传每次最多 500 条",
    "FORM_TOO_MANY_ITEMS": "表单的维修项目或配件行数超过上限（项目最多 200 行，配件最多 500 行）",
    "TOO_MANY_FILES": "附件数量超过上限",
    "NOT_FOUND": "资源不存在",
    "METHOD_NOT_ALLOWED": "不支持的请求方法",
    "INTERNAL_ERROR": "服务器内部错误",
    "RETRY_LATER": "服务暂时不可用（数据库或文件存储暂时无法访问），请稍后重试",
    # authentication
    "AUTH_REQUIRED": "缺少访问令牌",
    "AUTH_INVALID_CREDENTIALS": "企业编码或密钥错误",
    "AUTH_RATE_LIMITED": "认证失败次数过多，请稍后再试",
    "TOKEN_INVALID": "访问令牌无效",
    "TOKEN_EXPIRED": "访问令牌已过期",
    "CREDENTIAL_REVOKED": "该接入凭证已被吊销",
    "FORBIDDEN": "无权访问",
    # generic field errors
    "REQUIRED": "必填项缺失",
    "TOO_LONG": "长度超过上限",
    "TOO_SHORT": "长度不足",
    "WRONG_TYPE": "数据类型错误",
    "EXTRA_FIELD": "不允许的字段",
    "TOO_MANY_ITEMS": "条目数量超过上限",
    "CODE_UNKNOWN": "代码不在代码表中",
    "TEXT_INVALID": "文本包含不允许的控制字符（如 NUL）",
    # vehicle
    "VIN_LENGTH": "车辆识别代号必须为 17 位",
    "VIN_CHARSET": "车辆识别代号只能包含数字和除 I、O、Q 以外的大写字母",
    "VIN_CHECK_DIGIT": "车辆识别代号第 9 位校验位错误",
    "PLATE_FORMAT": "号牌号码格式错误",
    # enterprise
    "USCC_FORMAT": "统一社会信用代码格式错误",
    "USCC_CHECK_CHAR": "统一社会信用代码校验位错误",
    "REGION_UNKNOWN": "行政区划代码不存在",
    "ENTERPRISE_EXISTS": "该统一社会信用代码的企业已注册",
    "ENTERPRISE_PENDING": (
        "企业待审核：注册已受理，须经所在地监管部门审核通过（或列入道路运政许可名册）后才能获取令牌和上传记录"
    ),
    "ENTERPRISE_REFUSED": "企业注册未通过审核",
    "ENTERPRISE_SUSPENDED": "企业已暂停接入",
    "ENTERPRISE_STATE": "企业当前状态下不能进行此操作",
    "LICENCE_NOT_IN_FORCE": "许可名册中该企业的许可已吊销、注销、暂停或过期，不能审核通过",
    "REASON_REQUIRED": "不通过时须填写原因",
    # record
    "DATE_FORMAT": "日期格式错误",
    "DATE_IN_FUTURE": "日期不能晚于今天",
    "SETTLE_BEFORE_REPAIR": "结算日期不能早于送修日期",
    "MILEAGE_INVALID": "里程必须为 0 到 9999999 之间的整数",
    "AMOUNT_INVALID": "金额或数量必须为非负数且最多两位小数",
    "AMOUNT_MISMATCH": "金额合计不符",
    "RECORD_NOT_FOUND": "维修记录不存在",
    "RECORD_WITHDRAWN": "维修记录已撤销",
    # attachments
    "ATTACHMENT_TOO_LARGE": "附件超过大小限制",
    "ATTACHMENT_TYPE": "附件类型不允许，仅支持 JPEG、PNG、PDF",
    "ATTACHMENT_CHECKSUM": "附件校验和不符",
    "ATTACHMENT_EMPTY": "附件为空",
    # owner
    "OWNER_EXISTS": "该手机号已注册",
    "PHONE_FORMAT": "手机号格式错误",
    "PASSWORD_WEAK": "密码至少 8 位",
    "QUERY_CODE_INVALID": "查询码与车辆不匹配",
    "VEHICLE_NOT_BOUND": "尚未认证该车辆",
    "ID_NUMBER_FORMAT": "居民身份证号码格式或校验位错误",
    "ID_NUMBER_EXISTS": "该身份证号码已注册",
    "GRANT_DAYS_INVALID": "授权天数超出允许范围",
    "GRANT_NOT_FOUND": "授权不存在",
    # owner binding scope (issue 15): a query code shows one shop's records; the whole history needs
    # the vehicle registration check or an approved 行驶证 photo
    "QUERY_CODE_SUPERSEDED": "该查询码所属维修早于车辆当前车主的认证（车辆已过户），不能再用于认证",
    "FULL_VERIFICATION_REQUIRED": "须先完成车辆完整档案认证（车辆登记信息核验或行驶证审核）",
    "REGISTRY_DISABLED": "本地未开通车辆登记信息自动核验，请上传行驶证照片申请认证",
    "REGISTRY_NO_MATCH": "车辆登记信息核验未通过：号牌、姓名或身份证号码与该车登记信息不符",
    "REGISTRY_UNAVAILABLE": "车辆登记信息核验服务暂不可用，请稍后再试或上传行驶证照片申请认证",
    "ID_NUMBER_MISMATCH": "身份证号码与本账户登记的不一致",
    "NAME_REQUIRED": "请填写机动车所有人姓名",
    "PASSWORD_WRONG": "当前密码错误",
    # access control and data-use rules
    "AUTHORIZATION_REQUIRED": "未获车主授权查看该车辆档案",
    "AUTHORIZATION_EXPIRED": "车主授权已过期",
    "REGION_FORBIDDEN": "超出管辖区域",
    "ENTERPRISE_NOT_FOUND": "企业不存在",
    "ROLE_SELF_ASSIGN": "不能修改自己的角色",
    "ROLE_INVALID": "该角色不可分配给工作人员账户",
    "REGION_SCOPE_REQUIRED": "监管人员必须指定管辖区域，其他角色不得指定",
    # staff (regulators and administrators)
    "STAFF_INVALID_CREDENTIALS": "用户名、密码或动态口令错误",
    "ACCOUNT_LOCKED": "登录失败次数过多，账户已暂时锁定",
    "PASSWORD_EXPIRED": "密码已过期，请先修改密码",
    "PASSWORD_POLICY": "密码长度不足，或未包含大写字母、小写字母、数字、符号中的至少三类，或包含用户名",
    "PASSWORD_REUSED": "新密码不能与当前密码相同",
    "SESSION_EXPIRED": "会话已超时，请重新登录",
    "SESSION_REVOKED": "会话已注销，请重新登录",
    "STAFF_EXISTS": "该用户名已存在",
    "STAFF_NOT_FOUND": "工作人员账户不存在",
    "AUDIT_CHAIN_BROKEN": "审计日志哈希链断裂：记录被删除或改动",
    "AUDIT_KEY_MISSING": "审计日志为带密钥的链，本节点未配置审计密钥，无法校验",
    "USERNAME_FORMAT": "用户名只能包含小写字母、数字、点、下划线和连字符，3 至 40 位",
    "ENROLMENT_REQUIRED": "该账户尚未完成首次登录：请用激活码设置本人密码并绑定动态口令",
    "ENROLMENT_INVALID": "用户名或激活码错误，或激活码已使用、已过期",
    "ENROLMENT_PENDING": "该账户尚未完成首次登录，不能分配角色",
    # portal: ratings, complaints, notices, 行驶证 claims, shop accounts, statistics
    "RATING_EXISTS": "该次维修已评价过，每次维修只能评价一次",
    "RATING_WINDOW_CLOSED": "已超过评价期限",
    "RATING_SCORE_INVALID": "每项评分须为 1 至 5 分",
    "COMPLAINT_NOT_FOUND": "投诉不存在",
    "COMPLAINT_STATE": "投诉当前状态下不能进行此操作",
    "COMPLAINT_TEXT_REQUIRED": "请填写投诉标题和内容",
    "ASSIGNEE_INVALID": "承办人须为本辖区的监管人员",
    "NOT_ASSIGNEE": "只有承办人可以答复该投诉",
    "TEXT_REQUIRED": "请填写内容",
    "REPLY_EXISTS": "已答复过，不能重复答复",
    "NOTICE_KIND_UNKNOWN": "信息类别不存在",
    "NOTICE_NOT_FOUND": "信息不存在",
    "CLAIM_NOT_FOUND": "认证申请不存在",
    "CLAIM_STATE": "该申请已审核",
    "VIN_INVALID": "车辆识别代号格式或校验位错误",
    "PERIOD_INVALID": "统计期间无效：开始日期须不晚于结束日期，且跨度不超过 3 年",
    "EXPORT_FORMAT": "导出格式仅支持 csv、xlsx",
    "STATS_TABLE_UNKNOWN": "统计表不存在",
    "SHOP_INVALID_CREDENTIALS": "用户名或密码错误",
    "SHOP_USER_EXISTS": "该用户名已存在",
    # node-to-node exchange (docs/exchange.md)
    "EXCHANGE_DISABLED": "本节点未启用数据交换",
    "PEER_CERT_REQUIRED": "数据交换接口须以对端节点证书进行双向 TLS 认证",
    "PEER_UNKNOWN": "未配置的对端节点",
    "PEER_CERT_MISMATCH": "报文发送方与连接证书不符",
    "WRONG_RECIPIENT": "报文接收方不是本节点",
    "SIGNATURE_INVALID": "报文签名验证失败",
    "MESSAGE_MALFORMED": "报文格式错误",
    "KIND_UNKNOWN": "未知的报文类型",
    "DIGEST_MISMATCH": "记录内容与摘要不符",
    "ENTERPRISE_INVALID": "报文中的企业信息无效",
    # warnings (accepted, but flagged)
    "MILEAGE_DECREASED": "里程小于该车上一次维修记录（可能更换过里程表）",
}


def message(code: str) -> str:
    return MESSAGES.get(code, code)


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str

    @classmethod
    def of(cls, field: str, code: str) -> "FieldError":
        return cls(field, code, message(code))

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class AppError(Exception):
    """A failure with a code from the catalogue, raised by services and turned into a response."""

    def __init__(
        self, code: str, status: int = 400, detail: str | None = None, fields: list[FieldError] | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.detail = detail or message(code)
        self.fields = fields or []

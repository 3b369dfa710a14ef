//! The printed bill (缴费通知单) and receipt (收据) pages: what they show and where.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::billing::bills::model::{BillStatus, LineKind, PaymentMethod};
use crate::kit::money::Money;
use crate::kit::pdf::{Align, Doc, PAGE_HEIGHT, PAGE_WIDTH, Page};

const LEFT: f32 = 50.0;
const RIGHT: f32 = PAGE_WIDTH - 50.0;
/// below this a page is full: a bill of many lines goes on to another page
const BOTTOM: f32 = 150.0;

/// Everything one printed bill shows.
pub struct Sheet {
    pub company: String,
    pub company_phone: String,
    pub project: String,
    /// 3栋 2单元 1201, or 车位 B-101
    pub place: String,
    pub payer: String,
    pub bill_id: uuid::Uuid,
    pub period: NaiveDate,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub status: BillStatus,
    pub total: Decimal,
    pub late_fee: Decimal,
    pub paid: Decimal,
    pub lines: Vec<SheetLine>,
}

pub struct SheetLine {
    pub kind: LineKind,
    pub name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub previous: Option<Decimal>,
    pub current: Option<Decimal>,
    pub amount: Decimal,
}

/// Bumped when a page's layout or wording changes: documents made before are made again.
pub const TEMPLATE: &str = "2026-11-28";

impl Sheet {
    /// Everything the page shows, as text: a printed bill is made again exactly when this
    /// changes (an amount, a name, the template).
    pub fn fingerprint(&self) -> String {
        let mut s = format!(
            "{TEMPLATE}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.company,
            self.company_phone,
            self.project,
            self.place,
            self.payer,
            self.bill_id,
            self.period,
            self.issued,
            self.due,
            self.status.as_str(),
            self.total,
            self.late_fee,
            self.paid,
            self.lines.len()
        );
        for l in &self.lines {
            s.push_str(&format!(
                "|{}:{}:{}:{}:{:?}:{:?}:{}",
                l.kind.as_str(),
                l.name,
                l.quantity,
                l.unit_price,
                l.previous,
                l.current,
                l.amount
            ));
        }
        s
    }
}

impl Receipt {
    /// As `Sheet::fingerprint`.
    pub fn fingerprint(&self) -> String {
        let mut s = format!(
            "{TEMPLATE}|{}|{}|{}|{}|{}|{:?}|{}|{}|{:?}|{}|{}",
            self.company,
            self.project,
            self.receipt_no,
            self.payer,
            self.method.as_str(),
            self.reference,
            self.amount,
            self.received_at,
            self.received_by,
            self.unapplied,
            self.refunded
        );
        for (what, amount) in &self.items {
            s.push_str(&format!("|{what}:{amount}"));
        }
        s
    }
}

/// A number as printed: no trailing zeros beyond what it needs (readings, quantities).
fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

fn yuan(d: Decimal) -> String {
    Money::round(d).to_string()
}

fn month(d: NaiveDate) -> String {
    format!("{}年{}月", d.year(), d.month())
}

/// Text cut to a width, with an ellipsis when it is cut.
fn fit(p: &mut Page<'_>, text: &str, size: f32, width: f32) -> String {
    if p.width(text, size) <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if p.width(&out, size) + p.width("…", size) > width {
            out.pop();
            break;
        }
    }
    out.push('…');
    out
}

/// The columns of the table of lines: (header, right edge or left edge for the name).
const COLUMNS: [(&str, f32); 6] = [
    ("收费项目", LEFT + 4.0),
    ("上期读数", 300.0),
    ("本期读数", 365.0),
    ("数量", 425.0),
    ("单价", 485.0),
    ("金额（元）", RIGHT - 4.0),
];

fn header(p: &mut Page<'_>, s: &Sheet, continued: bool) -> f32 {
    let mut y = PAGE_HEIGHT - 60.0;
    let title = format!("{}缴费通知单{}", month(s.period), if continued { "（续）" } else { "" });
    p.text(PAGE_WIDTH / 2.0, y, 18.0, Align::Center, &title);
    y -= 20.0;
    p.text(PAGE_WIDTH / 2.0, y, 11.0, Align::Center, &format!("{} · {}", s.company, s.project));
    y -= 30.0;
    let mid = PAGE_WIDTH / 2.0 + 10.0;
    p.text(LEFT, y, 10.5, Align::Left, &format!("房屋：{}", s.place));
    p.text(mid, y, 10.5, Align::Left, &format!("缴费人：{}", s.payer));
    y -= 18.0;
    p.text(LEFT, y, 10.5, Align::Left, &format!("账期：{}", month(s.period)));
    p.text(mid, y, 10.5, Align::Left, &format!("缴费截止日期：{}", s.due));
    y -= 18.0;
    p.text(LEFT, y, 10.5, Align::Left, &format!("出账日期：{}", s.issued));
    p.text(mid, y, 8.5, Align::Left, &format!("账单编号：{}", s.bill_id));
    y -= 26.0;
    p.shade(LEFT, y - 6.0, RIGHT - LEFT, 20.0, 0.9);
    for (i, (name, x)) in COLUMNS.iter().enumerate() {
        p.text(*x, y, 10.0, if i == 0 { Align::Left } else { Align::Right }, name);
    }
    y - 22.0
}

/// One bill on as many pages as its lines need (one almost always).
pub fn bill(doc: &mut Doc, s: &Sheet) {
    let mut p = doc.page();
    let mut y = header(&mut p, s, false);
    for l in &s.lines {
        if y < BOTTOM {
            p.finish();
            p = doc.page();
            y = header(&mut p, s, true);
        }
        let name = match l.kind {
            LineKind::Fee | LineKind::Charge => l.name.clone(),
            LineKind::Discount => format!("优惠：{}", l.name),
            LineKind::Adjustment => format!("调整：{}", l.name),
        };
        let name = fit(&mut p, &name, 10.0, 190.0);
        p.text(COLUMNS[0].1, y, 10.0, Align::Left, &name);
        if let Some(prev) = l.previous {
            p.text(COLUMNS[1].1, y, 10.0, Align::Right, &plain(prev));
        }
        if let Some(cur) = l.current {
            p.text(COLUMNS[2].1, y, 10.0, Align::Right, &plain(cur));
        }
        if l.kind == LineKind::Fee {
            p.text(COLUMNS[3].1, y, 10.0, Align::Right, &plain(l.quantity));
            p.text(COLUMNS[4].1, y, 10.0, Align::Right, &plain(l.unit_price));
        }
        p.text(COLUMNS[5].1, y, 10.0, Align::Right, &yuan(l.amount));
        y -= 6.0;
        p.line(LEFT, y, RIGHT, y, 0.3);
        y -= 14.0;
    }
    y -= 6.0;
    let owed = s.total + s.late_fee - s.paid;
    let sum = |p: &mut Page<'_>, y: &mut f32, label: &str, amount: Decimal, size: f32| {
        p.text(RIGHT - 110.0, *y, size, Align::Right, label);
        p.text(COLUMNS[5].1, *y, size, Align::Right, &yuan(amount));
        *y -= size + 8.0;
    };
    sum(&mut p, &mut y, "本期合计", s.total, 10.5);
    if !s.late_fee.is_zero() {
        sum(&mut p, &mut y, "滞纳金", s.late_fee, 10.5);
    }
    if !s.paid.is_zero() {
        sum(&mut p, &mut y, "已缴", s.paid, 10.5);
    }
    sum(&mut p, &mut y, "应缴金额", owed, 13.0);
    if s.status == BillStatus::Paid {
        p.text(LEFT, y + 21.0, 13.0, Align::Left, "已结清");
    }
    y -= 12.0;
    p.line(LEFT, y, RIGHT, y, 0.5);
    y -= 20.0;
    p.text(LEFT, y, 10.5, Align::Left, "缴费方式");
    for m in [
        "1. 业主APP在线缴费：微信支付、支付宝",
        "2. 物业服务中心：现金、POS刷卡",
        "3. 银行转账：请在附言中注明房号，转账后凭回单到物业服务中心开具收据",
    ] {
        y -= 16.0;
        p.text(LEFT + 12.0, y, 9.5, Align::Left, m);
    }
    y -= 26.0;
    let phone = if s.company_phone.is_empty() { String::new() } else { format!("，服务电话 {}", s.company_phone) };
    p.text(
        LEFT,
        y,
        9.0,
        Align::Left,
        &format!("请于 {} 前缴纳，逾期将按规定计收滞纳金。如有疑问请联系物业服务中心{phone}。", s.due),
    );
    p.finish();
}

/// Everything a receipt shows.
pub struct Receipt {
    pub company: String,
    pub project: String,
    pub receipt_no: String,
    pub payer: String,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub amount: Decimal,
    pub received_at: String,
    pub received_by: Option<String>,
    /// (what was paid: place and month, amount)
    pub items: Vec<(String, Decimal)>,
    pub unapplied: Decimal,
    pub refunded: Decimal,
}

/// 金额大写 an amount as cheques and receipts write it: 叁佰叁拾陆元伍角捌分.
pub fn in_words(amount: Decimal) -> String {
    const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
    const PLACES: [&str; 4] = ["", "拾", "佰", "仟"];
    // amounts are NUMERIC(14, 2): below 10¹², so 万亿 is as far as it goes
    const GROUPS: [&str; 4] = ["", "万", "亿", "万亿"];
    let fen_total = Money::round(amount.abs()).yuan() * Decimal::ONE_HUNDRED;
    let fen_total: u128 = fen_total.trunc().to_string().parse().unwrap_or(0);
    let (mut yuan, jiao, fen) = (fen_total / 100, (fen_total / 10 % 10) as usize, (fen_total % 10) as usize);
    let mut groups = Vec::new();
    while yuan > 0 {
        groups.push((yuan % 10_000) as usize);
        yuan /= 10_000;
    }
    let mut out = String::new();
    let mut zero_pending = false;
    for (gi, g) in groups.iter().enumerate().rev() {
        if *g == 0 {
            zero_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() && (*g < 1000 || zero_pending) {
            out.push('零');
        }
        zero_pending = false;
        let mut zero = false;
        for p in (0..4).rev() {
            let d = g / 10usize.pow(p as u32) % 10;
            if d == 0 {
                zero = !out.is_empty() && g % 10usize.pow(p as u32) > 0 || zero;
                continue;
            }
            if zero && !out.ends_with('零') && !out.is_empty() {
                out.push('零');
            }
            zero = false;
            out.push(DIGITS[d]);
            out.push_str(PLACES[p]);
        }
        out.push_str(GROUPS[gi.min(3)]);
    }
    let whole = !out.is_empty();
    if whole {
        out.push('元');
    }
    match (jiao, fen) {
        (0, 0) if whole => out.push('整'),
        (0, 0) => out.push_str("零元整"),
        (j, f) => {
            if j > 0 {
                out.push(DIGITS[j]);
                out.push('角');
            } else if whole {
                out.push('零');
            }
            if f > 0 {
                out.push(DIGITS[f]);
                out.push('分');
            }
        }
    }
    if amount.is_sign_negative() && fen_total > 0 {
        out.insert(0, '负');
    }
    out
}

fn method_name(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Cash => "现金",
        PaymentMethod::BankTransfer => "银行转账",
        PaymentMethod::Pos => "POS刷卡",
        PaymentMethod::Wechat => "微信支付",
        PaymentMethod::Alipay => "支付宝",
        PaymentMethod::Prepaid => "预存款抵扣",
    }
}

/// 收据 of one payment.
pub fn receipt(doc: &mut Doc, r: &Receipt) {
    let mut p = doc.page();
    let mut y = PAGE_HEIGHT - 60.0;
    p.text(PAGE_WIDTH / 2.0, y, 18.0, Align::Center, "收  据");
    y -= 20.0;
    p.text(PAGE_WIDTH / 2.0, y, 11.0, Align::Center, &format!("{} · {}", r.company, r.project));
    y -= 30.0;
    p.text(LEFT, y, 10.5, Align::Left, &format!("收据编号：{}", r.receipt_no));
    p.text(RIGHT, y, 10.5, Align::Right, &format!("收款时间：{}", r.received_at));
    y -= 18.0;
    p.text(LEFT, y, 10.5, Align::Left, &format!("交款人：{}", r.payer));
    let how = match &r.reference {
        Some(reference) => format!("收款方式：{}（{reference}）", method_name(r.method)),
        None => format!("收款方式：{}", method_name(r.method)),
    };
    let how = fit(&mut p, &how, 10.5, 230.0);
    p.text(PAGE_WIDTH / 2.0 + 10.0, y, 10.5, Align::Left, &how);
    y -= 26.0;
    p.shade(LEFT, y - 6.0, RIGHT - LEFT, 20.0, 0.9);
    p.text(LEFT + 4.0, y, 10.0, Align::Left, "款项");
    p.text(RIGHT - 4.0, y, 10.0, Align::Right, "金额（元）");
    y -= 22.0;
    for (what, amount) in &r.items {
        if y < BOTTOM {
            // a payment of many bills goes on to another page
            p.finish();
            p = doc.page();
            y = PAGE_HEIGHT - 60.0;
            p.text(PAGE_WIDTH / 2.0, y, 14.0, Align::Center, &format!("收据 {}（续）", r.receipt_no));
            y -= 30.0;
        }
        let what = fit(&mut p, what, 10.0, 380.0);
        p.text(LEFT + 4.0, y, 10.0, Align::Left, &what);
        p.text(RIGHT - 4.0, y, 10.0, Align::Right, &yuan(*amount));
        y -= 6.0;
        p.line(LEFT, y, RIGHT, y, 0.3);
        y -= 14.0;
    }
    if !r.unapplied.is_zero() {
        p.text(LEFT + 4.0, y, 10.0, Align::Left, "未冲抵（待退）");
        p.text(RIGHT - 4.0, y, 10.0, Align::Right, &yuan(r.unapplied));
        y -= 20.0;
    }
    y -= 6.0;
    p.text(LEFT + 4.0, y, 10.5, Align::Left, &format!("金额大写：{}", in_words(r.amount)));
    p.text(RIGHT - 110.0, y, 13.0, Align::Right, "合计");
    p.text(RIGHT - 4.0, y, 13.0, Align::Right, &yuan(r.amount));
    if !r.refunded.is_zero() {
        y -= 20.0;
        p.text(RIGHT - 110.0, y, 10.5, Align::Right, "已退款");
        p.text(RIGHT - 4.0, y, 10.5, Align::Right, &yuan(r.refunded));
    }
    y -= 40.0;
    let by = r.received_by.as_deref().unwrap_or("线上支付");
    p.text(LEFT, y, 10.5, Align::Left, &format!("收款人：{by}"));
    p.text(RIGHT, y, 10.5, Align::Right, &format!("收款单位：{}", r.company));
    p.finish();
}

#[cfg(test)]
mod tests {
    use super::in_words;

    #[test]
    fn amounts_in_words() {
        for (n, words) in [
            ("0", "零元整"),
            ("0.05", "伍分"),
            ("0.5", "伍角"),
            ("1", "壹元整"),
            ("10", "壹拾元整"),
            ("101", "壹佰零壹元整"),
            ("110.5", "壹佰壹拾元伍角"),
            ("336.58", "叁佰叁拾陆元伍角捌分"),
            ("1005.07", "壹仟零伍元零柒分"),
            ("10000", "壹万元整"),
            ("100010", "壹拾万零壹拾元整"),
            ("1000000.01", "壹佰万元零壹分"),
            ("12345678.9", "壹仟贰佰叁拾肆万伍仟陆佰柒拾捌元玖角"),
            ("100000000", "壹亿元整"),
            ("100005000", "壹亿零伍仟元整"),
            ("2.345", "贰元叁角伍分"),
            ("-100", "负壹佰元整"),
            ("-0.5", "负伍角"),
        ] {
            assert_eq!(in_words(n.parse().unwrap()), words, "{n}");
        }
    }
}

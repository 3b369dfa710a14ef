//! 自定义计费公式: a small, safe expression language for fee items whose amount is not a
//! plain area × price or usage × price. Numbers, the named variables a bill line knows,
//! `+ - * /`, parentheses and `min`, `max`, `ceil`, `floor`; computed in `Decimal`, never
//! in floating point, with every overflow and division by zero an error, not a panic.
//!
//! ```text
//! area * price + 10          building area × unit price plus a fixed 10 yuan
//! max(usage - 5, 0) * price  usage above 5 units only
//! ceil(days / 30) * 20       20 yuan per started month of days
//! ```

use rust_decimal::Decimal;

/// The variables a formula may name, and what each means on a bill line.
pub const VARIABLES: &[(&str, &str)] = &[
    ("area", "建筑面积 building area, m²"),
    ("indoorArea", "套内面积 indoor area, m²"),
    ("usage", "用量 metered usage in the period"),
    ("months", "计费月数 months billed"),
    ("days", "计费天数 days billed"),
    ("price", "单价 the item's unit price"),
];

const FUNCTIONS: &[&str] = &["min", "max", "ceil", "floor"];

/// Longest formula text, deepest nesting, most tokens.
const MAX_LEN: usize = 200;
const MAX_DEPTH: usize = 16;
const MAX_TOKENS: usize = 120;

/// Why a formula was refused or could not be computed (the message names the place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormulaError {
    #[error("公式为空或超过200个字符")]
    Length,
    #[error("第{0}个字符无法识别")]
    BadChar(usize),
    #[error("数字格式错误：{0}")]
    BadNumber(String),
    #[error("未知变量或函数：{0}")]
    Unknown(String),
    #[error("公式不完整或括号不匹配")]
    Syntax,
    #[error("公式嵌套过深或过长")]
    TooComplex,
    #[error("函数 {0} 的参数个数不对")]
    Arity(String),
    #[error("计算溢出")]
    Overflow,
    #[error("除数为零")]
    DivisionByZero,
    #[error("缺少变量 {0} 的值")]
    Missing(String),
}

impl FormulaError {
    pub fn english(&self) -> String {
        match self {
            FormulaError::Length => "A formula is 1 to 200 characters".into(),
            FormulaError::BadChar(i) => format!("Unexpected character at {i}"),
            FormulaError::BadNumber(n) => format!("Bad number: {n}"),
            FormulaError::Unknown(n) => format!("Unknown variable or function: {n}"),
            FormulaError::Syntax => "Incomplete formula or unbalanced parentheses".into(),
            FormulaError::TooComplex => "The formula is nested too deeply or too long".into(),
            FormulaError::Arity(f) => format!("Wrong number of arguments to {f}"),
            FormulaError::Overflow => "The computation overflows".into(),
            FormulaError::DivisionByZero => "Division by zero".into(),
            FormulaError::Missing(v) => format!("No value for {v}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(Decimal),
    Ident(String),
    Op(char),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<Token>, FormulaError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '+' | '-' | '*' | '/' => {
                out.push(Token::Op(c));
                i += 1;
            }
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let plain = s.matches('.').count() <= 1 && !s.starts_with('.') && !s.ends_with('.') && s.len() <= 20;
                let n = s.parse::<Decimal>().ok().filter(|_| plain).ok_or(FormulaError::BadNumber(s))?;
                out.push(Token::Num(n));
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            _ => return Err(FormulaError::BadChar(i + 1)),
        }
        if out.len() > MAX_TOKENS {
            return Err(FormulaError::TooComplex);
        }
    }
    Ok(out)
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(Decimal),
    Var(String),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

struct Parser {
    toks: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn deeper(&mut self) -> Result<(), FormulaError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(FormulaError::TooComplex) } else { Ok(()) }
    }

    fn expr(&mut self) -> Result<Expr, FormulaError> {
        self.deeper()?;
        let mut left = self.term()?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.term()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.factor()?;
        while let Some(Token::Op(op @ ('*' | '/'))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, FormulaError> {
        if self.peek() == Some(&Token::Op('-')) {
            self.at += 1;
            self.deeper()?;
            let inner = self.factor()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        match self.next() {
            Some(Token::Num(n)) => Ok(Expr::Num(n)),
            Some(Token::Open) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Token::Close) => Ok(e),
                    _ => Err(FormulaError::Syntax),
                }
            }
            Some(Token::Ident(name)) if self.peek() == Some(&Token::Open) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(FormulaError::Unknown(name));
                }
                self.at += 1;
                let mut args = vec![self.expr()?];
                loop {
                    match self.next() {
                        Some(Token::Comma) => args.push(self.expr()?),
                        Some(Token::Close) => break,
                        _ => return Err(FormulaError::Syntax),
                    }
                }
                let ok = match name.as_str() {
                    "ceil" | "floor" => args.len() == 1,
                    _ => (2..=8).contains(&args.len()),
                };
                if !ok {
                    return Err(FormulaError::Arity(name));
                }
                Ok(Expr::Call(name, args))
            }
            Some(Token::Ident(name)) => {
                if VARIABLES.iter().any(|(v, _)| *v == name) {
                    Ok(Expr::Var(name))
                } else {
                    Err(FormulaError::Unknown(name))
                }
            }
            _ => Err(FormulaError::Syntax),
        }
    }
}

/// Parses and checks a formula: only the known variables and functions, balanced, short.
pub fn parse(text: &str) -> Result<Expr, FormulaError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_LEN {
        return Err(FormulaError::Length);
    }
    let mut p = Parser { toks: tokens(text)?, at: 0, depth: 0 };
    let e = p.expr()?;
    if p.at != p.toks.len() {
        return Err(FormulaError::Syntax);
    }
    Ok(e)
}

/// The values a formula's variables take on one bill line (`None`: this line has none,
/// e.g. no usage; a formula naming it cannot be computed).
pub trait Vars {
    fn get(&self, name: &str) -> Option<Decimal>;
}

impl Vars for &[(&str, Option<Decimal>)] {
    fn get(&self, name: &str) -> Option<Decimal> {
        self.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v)
    }
}

impl Expr {
    /// The formula names the variable.
    pub fn uses(&self, var: &str) -> bool {
        match self {
            Expr::Num(_) => false,
            Expr::Var(v) => v == var,
            Expr::Neg(e) => e.uses(var),
            Expr::Bin(_, a, b) => a.uses(var) || b.uses(var),
            Expr::Call(_, args) => args.iter().any(|a| a.uses(var)),
        }
    }

    /// The formula's value (not rounded: the bill line rounds once, to the fen).
    pub fn eval(&self, vars: &dyn Vars) -> Result<Decimal, FormulaError> {
        Ok(match self {
            Expr::Num(n) => *n,
            Expr::Var(v) => vars.get(v).ok_or_else(|| FormulaError::Missing(v.clone()))?,
            Expr::Neg(e) => -e.eval(vars)?,
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(vars)?, b.eval(vars)?);
                match op {
                    '+' => a.checked_add(b).ok_or(FormulaError::Overflow)?,
                    '-' => a.checked_sub(b).ok_or(FormulaError::Overflow)?,
                    '*' => a.checked_mul(b).ok_or(FormulaError::Overflow)?,
                    _ if b.is_zero() => return Err(FormulaError::DivisionByZero),
                    _ => a.checked_div(b).ok_or(FormulaError::Overflow)?,
                }
            }
            Expr::Call(f, args) => {
                let vals = args.iter().map(|a| a.eval(vars)).collect::<Result<Vec<_>, _>>()?;
                match f.as_str() {
                    "ceil" => vals[0].ceil(),
                    "floor" => vals[0].floor(),
                    "min" => vals.into_iter().min().unwrap_or_default(),
                    _ => vals.into_iter().max().unwrap_or_default(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn run(f: &str, vars: &[(&str, Decimal)]) -> Result<Decimal, FormulaError> {
        let vars: Vec<(&str, Option<Decimal>)> = vars.iter().map(|(n, v)| (*n, Some(*v))).collect();
        parse(f)?.eval(&vars.as_slice())
    }

    #[test]
    fn formulas_compute_in_decimal() {
        let v: &[(&str, Decimal)] = &[("area", d("89.37")), ("price", d("2.35")), ("usage", d("7.5"))];
        assert_eq!(run("area * price + 10", v), Ok(d("220.0195")));
        assert_eq!(run("max(usage - 5, 0) * price", v), Ok(d("5.875")));
        assert_eq!(run("max(usage - 10, 0) * price", v), Ok(d("0")));
        assert_eq!(run("ceil(45 / 30) * 20", v), Ok(d("40")));
        assert_eq!(run("-(area - 100) * 2", v), Ok(d("21.26")));
        assert_eq!(run("0.1 + 0.2", v), Ok(d("0.3")), "no binary floating point");
        assert_eq!(run("min(area, 50, 60)", v), Ok(d("50")));
    }

    #[test]
    fn bad_formulas_are_refused_with_the_reason() {
        let v: &[(&str, Decimal)] = &[];
        assert_eq!(parse(""), Err(FormulaError::Length));
        assert_eq!(parse("area * rate"), Err(FormulaError::Unknown("rate".into())));
        assert_eq!(parse("system(1, 2)"), Err(FormulaError::Unknown("system".into())));
        assert_eq!(parse("(area * 2"), Err(FormulaError::Syntax));
        assert_eq!(parse("area 2"), Err(FormulaError::Syntax));
        assert_eq!(parse("area; 2"), Err(FormulaError::BadChar(5)));
        assert_eq!(parse("1.2.3"), Err(FormulaError::BadNumber("1.2.3".into())));
        assert_eq!(parse("ceil(1, 2)"), Err(FormulaError::Arity("ceil".into())));
        assert_eq!(parse(&"(".repeat(40)), Err(FormulaError::TooComplex));
        assert_eq!(parse(&"-".repeat(40)), Err(FormulaError::TooComplex));
        assert_eq!(parse(&"1+".repeat(101)), Err(FormulaError::Length));
        assert_eq!(parse(&"1+".repeat(70)), Err(FormulaError::TooComplex));
        assert_eq!(run("area / (usage - usage)", v), Err(FormulaError::Missing("area".into())));
        let with: &[(&str, Decimal)] = &[("area", d("1")), ("usage", d("2"))];
        assert_eq!(run("area / (usage - usage)", with), Err(FormulaError::DivisionByZero));
        assert!(parse("max(area, 1) * price").unwrap().uses("price"));
        assert!(!parse("area * 2").unwrap().uses("price"));
        let huge = "9999999999999999999 * 9999999999999999999 * 9999999999999999999";
        assert_eq!(run(huge, v), Err(FormulaError::Overflow));
    }
}

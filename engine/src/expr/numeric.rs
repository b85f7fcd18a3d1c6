//! Decimal rounding for reported figures: `round_half_away` and `percent`.
//!
//! KRI values are shown to people who check them with a calculator, so rounding follows the
//! decimal rule taught in school (half away from zero) applied to the decimal number the value
//! prints as, not to the nearest binary float: 0.285 rounds to 0.29 even though the double closest
//! to 0.285 is slightly below it. Percentages of two integers are computed exactly with integer
//! arithmetic. Nothing here knows about expressions; the functions are plain Rust.

/// Largest number of decimal digits the rounding functions accept. Twelve keeps the exact
/// integer computation in `percent` far inside i128 and is more precision than any report needs.
pub const MAX_DIGITS: u32 = 12;

/// Rounds `x` to `digits` decimals, half away from zero, judged on the shortest decimal
/// representation of `x` (the one Rust prints), so binary representation error cannot flip a
/// visible 5 into a 4. Non-finite values are returned unchanged and a zero result is never
/// negative.
pub fn round_half_away(x: f64, digits: u32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let digits = digits.min(MAX_DIGITS) as usize;
    // Display for f64 never uses exponent notation and prints the shortest text that parses
    // back to the same value, which is exactly the decimal the author sees.
    let text = x.abs().to_string();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
    if frac_part.len() <= digits {
        return x;
    }
    let mut kept: Vec<u8> = int_part.bytes().chain(frac_part.bytes().take(digits)).collect();
    if frac_part.as_bytes()[digits] >= b'5' {
        increment_decimal(&mut kept);
    }
    let result = decimal_to_f64(x < 0.0, &kept, digits);
    if result == 0.0 { 0.0 } else { result }
}

/// `part / whole * 100`, rounded to `digits` decimals half away from zero, and 0.0 when `whole`
/// is zero (an empty population has no failing share). When both operands are integers the
/// result is computed exactly, so 1 of 16 is 6.3 and 1 of 8 is 12.5.
pub fn percent(part: Number, whole: Number, digits: u32) -> f64 {
    let digits = digits.min(MAX_DIGITS);
    match (part, whole) {
        (Number::Int(part), Number::Int(whole)) => percent_exact(part, whole, digits),
        (part, whole) => {
            let whole = whole.as_f64();
            if whole == 0.0 { 0.0 } else { round_half_away(part.as_f64() * 100.0 / whole, digits) }
        }
    }
}

/// A numeric operand: the rounding functions treat integers and floats differently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer operand, handled exactly.
    Int(i64),
    /// A floating-point operand.
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

fn percent_exact(part: i64, whole: i64, digits: u32) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // |part| * 100 * 10^12 < 9.3e32, well inside i128's 1.7e38.
    let scale = 10u128.pow(digits);
    let numerator = i128::from(part) * 100 * scale as i128;
    let denominator = i128::from(whole);
    let negative = (numerator < 0) != (denominator < 0) && numerator != 0;
    let (n, d) = (numerator.unsigned_abs(), denominator.unsigned_abs());
    let mut quotient = n / d;
    // Half away from zero: the magnitude goes up when the remainder is at least half the divisor.
    if (n % d) * 2 >= d {
        quotient += 1;
    }
    let text = quotient.to_string();
    let padded = format!("{text:0>width$}", width = digits as usize + 1);
    let result = decimal_to_f64(negative, padded.as_bytes(), digits as usize);
    if result == 0.0 { 0.0 } else { result }
}

/// Adds one unit in the last place to a string of ASCII digits, growing it on carry-out.
fn increment_decimal(digits: &mut Vec<u8>) {
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// Parses ASCII digits whose last `frac_digits` are decimals into the nearest f64.
fn decimal_to_f64(negative: bool, digits: &[u8], frac_digits: usize) -> f64 {
    let split = digits.len() - frac_digits;
    let mut text = String::with_capacity(digits.len() + 3);
    if negative {
        text.push('-');
    }
    if split == 0 {
        text.push('0');
    }
    text.extend(digits[..split].iter().map(|&b| b as char));
    if frac_digits > 0 {
        text.push('.');
        text.extend(digits[split..].iter().map(|&b| b as char));
    }
    // The text is built from ASCII digits only, so parsing cannot fail; NaN is unreachable.
    text.parse().unwrap_or(f64::NAN)
}

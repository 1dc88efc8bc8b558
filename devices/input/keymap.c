// SPDX-License-Identifier: MIT
#include "devices/input/keymap.h"

#include <glib.h>
#include <linux/input-event-codes.h>

struct keysym_key {
	uint32_t keysym;
	uint16_t code;
};

/* Printable ASCII, by the key that makes it on a US keyboard (keysyms 0x20 to 0x7e). */
static const uint16_t ascii_keys[0x7f - 0x20] = {
    [' ' - 0x20] = KEY_SPACE,     ['!' - 0x20] = KEY_1,           ['"' - 0x20] = KEY_APOSTROPHE,
    ['#' - 0x20] = KEY_3,         ['$' - 0x20] = KEY_4,           ['%' - 0x20] = KEY_5,
    ['&' - 0x20] = KEY_7,         ['\'' - 0x20] = KEY_APOSTROPHE, ['(' - 0x20] = KEY_9,
    [')' - 0x20] = KEY_0,         ['*' - 0x20] = KEY_8,           ['+' - 0x20] = KEY_EQUAL,
    [',' - 0x20] = KEY_COMMA,     ['-' - 0x20] = KEY_MINUS,       ['.' - 0x20] = KEY_DOT,
    ['/' - 0x20] = KEY_SLASH,     ['0' - 0x20] = KEY_0,           ['1' - 0x20] = KEY_1,
    ['2' - 0x20] = KEY_2,         ['3' - 0x20] = KEY_3,           ['4' - 0x20] = KEY_4,
    ['5' - 0x20] = KEY_5,         ['6' - 0x20] = KEY_6,           ['7' - 0x20] = KEY_7,
    ['8' - 0x20] = KEY_8,         ['9' - 0x20] = KEY_9,           [':' - 0x20] = KEY_SEMICOLON,
    [';' - 0x20] = KEY_SEMICOLON, ['<' - 0x20] = KEY_COMMA,       ['=' - 0x20] = KEY_EQUAL,
    ['>' - 0x20] = KEY_DOT,       ['?' - 0x20] = KEY_SLASH,       ['@' - 0x20] = KEY_2,
    ['[' - 0x20] = KEY_LEFTBRACE, ['\\' - 0x20] = KEY_BACKSLASH,  [']' - 0x20] = KEY_RIGHTBRACE,
    ['^' - 0x20] = KEY_6,         ['_' - 0x20] = KEY_MINUS,       ['`' - 0x20] = KEY_GRAVE,
    ['{' - 0x20] = KEY_LEFTBRACE, ['|' - 0x20] = KEY_BACKSLASH,   ['}' - 0x20] = KEY_RIGHTBRACE,
    ['~' - 0x20] = KEY_GRAVE,
};

/* The letters, a to z, in order. */
static const uint16_t letter_keys[26] = {
    KEY_A, KEY_B, KEY_C, KEY_D, KEY_E, KEY_F, KEY_G, KEY_H, KEY_I, KEY_J, KEY_K, KEY_L, KEY_M,
    KEY_N, KEY_O, KEY_P, KEY_Q, KEY_R, KEY_S, KEY_T, KEY_U, KEY_V, KEY_W, KEY_X, KEY_Y, KEY_Z,
};

/* Keys that are not characters: keysyms from X11's keysymdef.h. */
static const struct keysym_key function_keys[] = {
    {0xff08, KEY_BACKSPACE},  {0xff09, KEY_TAB},        {0xff0d, KEY_ENTER},
    {0xff13, KEY_PAUSE},      {0xff14, KEY_SCROLLLOCK}, {0xff15, KEY_SYSRQ},
    {0xff1b, KEY_ESC},        {0xff50, KEY_HOME},       {0xff51, KEY_LEFT},
    {0xff52, KEY_UP},         {0xff53, KEY_RIGHT},      {0xff54, KEY_DOWN},
    {0xff55, KEY_PAGEUP},     {0xff56, KEY_PAGEDOWN},   {0xff57, KEY_END},
    {0xff61, KEY_SYSRQ},      {0xff63, KEY_INSERT},     {0xff67, KEY_COMPOSE},
    {0xff7f, KEY_NUMLOCK},    {0xff8d, KEY_KPENTER},    {0xffaa, KEY_KPASTERISK},
    {0xffab, KEY_KPPLUS},     {0xffad, KEY_KPMINUS},    {0xffae, KEY_KPDOT},
    {0xffaf, KEY_KPSLASH},    {0xffb0, KEY_KP0},        {0xffb1, KEY_KP1},
    {0xffb2, KEY_KP2},        {0xffb3, KEY_KP3},        {0xffb4, KEY_KP4},
    {0xffb5, KEY_KP5},        {0xffb6, KEY_KP6},        {0xffb7, KEY_KP7},
    {0xffb8, KEY_KP8},        {0xffb9, KEY_KP9},        {0xffbe, KEY_F1},
    {0xffbf, KEY_F2},         {0xffc0, KEY_F3},         {0xffc1, KEY_F4},
    {0xffc2, KEY_F5},         {0xffc3, KEY_F6},         {0xffc4, KEY_F7},
    {0xffc5, KEY_F8},         {0xffc6, KEY_F9},         {0xffc7, KEY_F10},
    {0xffc8, KEY_F11},        {0xffc9, KEY_F12},        {0xffe1, KEY_LEFTSHIFT},
    {0xffe2, KEY_RIGHTSHIFT}, {0xffe3, KEY_LEFTCTRL},   {0xffe4, KEY_RIGHTCTRL},
    {0xffe5, KEY_CAPSLOCK},   {0xffe7, KEY_LEFTMETA},   {0xffe8, KEY_RIGHTMETA},
    {0xffe9, KEY_LEFTALT},    {0xffea, KEY_RIGHTALT},   {0xffeb, KEY_LEFTMETA},
    {0xffec, KEY_RIGHTMETA},  {0xfe03, KEY_RIGHTALT},   {0xffff, KEY_DELETE},
};

uint16_t keymap_evdev_code(uint32_t keysym)
{
	if (keysym >= 'a' && keysym <= 'z')
		return letter_keys[keysym - 'a'];
	if (keysym >= 'A' && keysym <= 'Z')
		return letter_keys[keysym - 'A'];
	if (keysym >= 0x20 && keysym < 0x7f)
		return ascii_keys[keysym - 0x20];
	for (size_t i = 0; i < G_N_ELEMENTS(function_keys); i++)
		if (function_keys[i].keysym == keysym)
			return function_keys[i].code;
	return 0;
}
